"""One deadline for a whole HTTPS exchange (token requests, OIDC discovery, later Graph).

A per-read timeout does not bound an exchange: an endpoint that sends its answer one byte
a second satisfies every read and holds the worker for as long as it likes. Closing the
``requests`` session does not help either, since the connection in use is not in its pool.
What ends a blocked read at once is shutting its socket down, so each connection made
while a deadline runs is registered with it, and at the deadline its socket is shut down:
the read fails, and the caller reports that the endpoint did not answer in time.

Deadlines nest: an inner one never outlives the outer one (a token step's discovery and
token request share the step's time).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from typing import Any

import urllib3
import urllib3.connection
import urllib3.connectionpool


class Exchange:
    """The time left for one exchange, and the connections to cut when it is over."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.ends_at = time.monotonic() + seconds
        self.expired = False
        self._connections: set[_WatchedConnection] = set()
        self._lock = threading.Lock()

    def remaining(self) -> float:
        return max(self.ends_at - time.monotonic(), 0.0)

    def watch(self, connection: _WatchedConnection) -> None:
        with self._lock:
            self._connections.add(connection)
            expired = self.expired
        if expired:  # registered just after the deadline: cut at once
            connection.cut()

    def expire(self) -> None:
        with self._lock:
            self.expired = True
            connections = list(self._connections)
        for connection in connections:
            connection.cut()


_current: ContextVar[Exchange | None] = ContextVar("https_exchange", default=None)


@contextmanager
def exchange_deadline(seconds: float) -> Iterator[Exchange]:
    """Run the block's HTTPS exchanges (through ``WatchedAdapterMixin``) within ``seconds``."""
    outer = _current.get()
    if outer is not None and outer.ends_at <= time.monotonic() + seconds:
        yield outer  # the outer deadline comes first: it is the one that counts
        return
    exchange = Exchange(seconds)
    token = _current.set(exchange)
    watchdog = threading.Timer(seconds, exchange.expire)
    watchdog.daemon = True
    watchdog.start()
    try:
        yield exchange
    finally:
        watchdog.cancel()
        _current.reset(token)


class _WatchedConnection(urllib3.connection.HTTPSConnection):
    """An HTTPS connection that registers itself with the running deadline when it connects
    and whenever it sends a request (a kept-alive connection serves several exchanges).

    It keeps a duplicate of its TCP socket's descriptor: TLS takes the original over, and
    during the handshake neither is reachable through ``self.sock``; shutting the duplicate
    down ends the connection, and so the blocked read, whatever stage it is in.
    """

    _handle: socket.socket | None = None

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        self._drop_handle()
        self._handle = sock.dup()
        self._register()
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        self._register()
        super().request(*args, **kwargs)

    def close(self) -> None:
        super().close()
        self._drop_handle()

    def cut(self) -> None:
        handle = self._handle
        if handle is not None:
            with suppress(OSError):  # already closed: nothing to cut
                handle.shutdown(socket.SHUT_RDWR)

    def _register(self) -> None:
        exchange = _current.get()
        if exchange is not None:
            exchange.watch(self)

    def _drop_handle(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            handle.close()


class _WatchedPool(urllib3.connectionpool.HTTPSConnectionPool):
    ConnectionCls = _WatchedConnection


def watch_pools(manager: Any) -> Any:
    """Make ``manager`` (a urllib3 pool or proxy manager) open watched HTTPS connections."""
    manager.pool_classes_by_scheme = {**manager.pool_classes_by_scheme, "https": _WatchedPool}
    return manager
