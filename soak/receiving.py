"""What the sandbox's Exchange stand-in received, by soak id: the only count that matters."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

HEADER = "X-Soak-Id"
_ID = re.compile(rb"^X-Soak-Id:\s*(\S+)\r?$", re.MULTILINE | re.IGNORECASE)


@dataclass
class Received:
    """A copy of the server's records at one moment."""

    # (soak id, time.monotonic() of its arrival), in arrival order.
    arrivals: list[tuple[str, float]] = field(default_factory=list)
    # Soak ids of messages accepted on a connection that then ended without another
    # command: the client may have died before it read the 250.
    dropped_after_data: list[str] = field(default_factory=list)
    # Connections that ended while a message's content was arriving.
    dropped_in_data: int = 0

    @property
    def counts(self) -> Counter[str]:
        return Counter(soak_id for soak_id, _ in self.arrivals)

    def first_after(self, soak_id: str, moment: float) -> float | None:
        return next((at for i, at in self.arrivals if i == soak_id and at >= moment), None)

    def first_arrival_after(self, moment: float) -> float | None:
        return next((at for _, at in self.arrivals if at >= moment), None)


class Receiver:
    """Reads the stand-in's records (``tests.sandbox.exchange.ExchangeStandIn``) under its
    lock; each message's id is read once."""

    def __init__(self, exchange: Any) -> None:
        self.handler = exchange.handler
        self.ids: list[str] = []

    def now(self) -> Received:
        handler = self.handler
        with handler._lock:
            delivered = handler.delivered[len(self.ids) :]
            times = list(handler.received_at)
            dropped = list(handler.dropped_after_data)
            in_data = handler.dropped_in_data
        self.ids.extend(_soak_id(content) for _, content in delivered)
        return Received(
            arrivals=[(i, at) for i, at in zip(self.ids, times, strict=True) if i],
            dropped_after_data=[self.ids[index] for index in dropped if self.ids[index]],
            dropped_in_data=in_data,
        )


def _soak_id(content: bytes) -> str:
    headers = content.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    found = _ID.search(headers)
    return found.group(1).decode() if found else ""
