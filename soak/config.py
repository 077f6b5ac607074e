"""What a soak run does, from SOAK_* environment variables (``make soak`` passes them)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class SoakConfig:
    # Enough to outlast the first kill's wait for its claims and the cut after it: at
    # 500 messages a second, 6000 were all delivered before the broker came back.
    messages: int = 20000
    workers: int = 2
    # A worker is SIGKILLed (and started again) this often; 0: never.
    kill_every: float = 15.0
    # Instead of by time: a kill each time this many more messages have arrived (0: by time).
    # The default: a drain of 500 messages a second would end before a timed kill came.
    kill_after_messages: int = 1000
    # At most this many kills; 0: as many as the run's length allows.
    kills: int = 0
    # The broker is away this long, once; 0: no cut.
    broker_cut: float = 10.0
    # Seconds after the messages are queued that the cut begins.
    cut_after: float = 3.0
    # A run that has not delivered everything by then ends, and counts what is stuck.
    timeout: float = 240.0
    # The private redis-server's port when REDIS_URL is set (never the shared server).
    redis_port: int = 8725

    @classmethod
    def from_environment(cls) -> SoakConfig:
        def number(name: str, default: float) -> float:
            value = os.environ.get(f"SOAK_{name.upper()}", "").strip()
            return float(value) if value else default

        defaults = cls()
        return cls(
            messages=int(number("messages", defaults.messages)),
            workers=int(number("workers", defaults.workers)),
            kill_every=number("kill_every", defaults.kill_every),
            kill_after_messages=int(number("kill_after_messages", defaults.kill_after_messages)),
            kills=int(number("kills", defaults.kills)),
            broker_cut=number("broker_cut", defaults.broker_cut),
            cut_after=number("cut_after", defaults.cut_after),
            timeout=number("timeout", defaults.timeout),
            redis_port=int(number("redis_port", defaults.redis_port)),
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
