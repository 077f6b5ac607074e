"""The log's formatter: one record, one line, whatever text a record carries.

A mail server's answer or a token endpoint's error can hold CR, LF or ESC; written as is,
"...\\r\\n2026-01-01 12:00:00 INFO forged" would appear as a second record that nobody
wrote. The mail engine cleans such text where it enters; this is the defence in depth for
anything that reaches a log without passing there.
"""

from __future__ import annotations

import logging

from external_text import printable

# What a line break inside a record (a traceback's, say) becomes: visible, and one line.
LINE_BREAK = " \u23ce "


class OneLineFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return LINE_BREAK.join(printable(line) for line in text.rstrip("\n").split("\n"))
