"""Text that came from outside (a mail server's answer, a token endpoint's error) made safe
to log, record and show: no character in it can start a new line or steer a terminal.

A package of its own because everyone needs it and it needs no one: the mail engine (where
such text enters), the activity trail and the log formatter. It imports the standard
library only.
"""

from __future__ import annotations

import unicodedata

__all__ = ["printable"]

# Line and paragraph separators break lines in editors and log viewers as LF does.
_BREAKING_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})
# These read as a gap: a space keeps "Error.\r\nTrace ID" readable (Entra separates its
# error description's parts with CRLF).
_SPACING = frozenset("\t\n\v\f\r\x1c\x1d\x1e\x1f\x85\u2028\u2029")
REPLACEMENT = "\ufffd"


def printable(text: str, *, keep_lines: bool = False) -> str:
    """``text`` with every control, format and line-separator character replaced: a space
    for those that separate (CR, LF, tab...), U+FFFD for the others (ESC, NUL, bidi
    overrides...). ``keep_lines`` keeps LF as it is, for text whose lines are its own
    structure (an SMTP reply of several lines, which smtplib joins with LF) and that is
    shown as such; logging and the activity trail flatten it again."""
    if text.isascii() and text.isprintable():
        return text  # the usual case, without a look at each character
    out = []
    for ch in text:
        if ch == "\n" and keep_lines:
            out.append(ch)
        elif ch in _SPACING:
            out.append(" ")
        elif unicodedata.category(ch) in _BREAKING_CATEGORIES:
            out.append(REPLACEMENT)
        else:
            out.append(ch)
    return "".join(out)
