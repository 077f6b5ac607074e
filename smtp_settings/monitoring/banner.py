"""A banner as every Administration page shows it: what to know, how urgent, where to act."""

from __future__ import annotations

from dataclasses import dataclass

# A banner's severity, most urgent first: mail cannot leave, mail will stop soon, to know.
ERROR, WARNING, INFO = "error", "warning", "info"


@dataclass
class Banner:
    key: str
    text: str
    severity: str = ERROR
    # Where the administrator acts on it: a URL name, and a part of that page.
    place: str = "smtp_settings:manage"
    fragment: str = ""
    # What went wrong, so that one cause gives one banner: a diagnosis key or its text.
    cause: str = ""

    @property
    def place_label(self) -> str:
        return _PLACE_LABELS[self.place]


_PLACE_LABELS = {
    "smtp_settings:manage": "Manage SMTP",
    "smtp_settings:outbox": "Outbox",
    "administration": "Background processing",
}
