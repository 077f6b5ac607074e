"""A run's SMTP Connect and TLS, started while its token is asked for.

Neither needs the token (only AUTH does), and against Exchange Online each is a round trip
or two, as is the token request: done side by side, a run is shorter by the shorter of
them. The steps' results are handed over as they would have been had the steps run in
line: the Connect step gets the address or raises the same failure, the TLS step the
same, each with the time it took on the wire. When the token step fails, the session is
cut and nothing of it is shown: the steps after the token are skipped as before.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from smtp_settings.mail.transport import SmtpConnection


class EarlySession:
    def __init__(self, connection: SmtpConnection) -> None:
        self.connection = connection
        # stage → (value, error, seconds it took)
        self._ended: dict[str, tuple[Any, BaseException | None, float]] = {}
        self._thread = threading.Thread(target=self._work, name="smtp-early", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        for stage, call in (("connect", self.connection.connect), ("tls", self.connection.secure)):
            started = time.monotonic()
            try:
                value = call()
            except BaseException as error:  # handed to the step it belongs to
                self._ended[stage] = (None, error, time.monotonic() - started)
                return
            self._ended[stage] = (value, None, time.monotonic() - started)

    def result(self, stage: str) -> tuple[Any, float]:
        """The stage's value and the seconds it took; raises what it raised."""
        self._thread.join()
        value, error, seconds = self._ended[stage]
        if error is not None:
            raise error
        return value, seconds

    def seconds(self, stage: str) -> float | None:
        """What the stage took on the wire, when it ran here (its failure's time too)."""
        ended = self._ended.get(stage)
        return ended[2] if ended is not None else None

    def abandon(self) -> None:
        """The run stopped before Connect: the session is cut at once, not waited for."""
        if self._thread.is_alive():
            self.connection.cut()
        self._thread.join()
