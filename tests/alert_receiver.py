"""A local HTTP receiver for Apprise's json:// destinations: it records what arrives and
answers with the status its path asks for (``/fail`` answers 500)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


class AlertReceiver:
    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                failing = self.path.startswith("/fail")
                if not failing:
                    with receiver.lock:
                        receiver.received.append((self.path, json.loads(body)))
                self.send_response(500 if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]

    def url(self, path: str) -> str:
        return f"json://127.0.0.1:{self.port}{path}"

    def titles(self, path: str | None = None) -> list[str]:
        with self.lock:
            return [body["title"] for got, body in self.received if path in (None, got)]


@pytest.fixture
def alert_receiver() -> Iterator[AlertReceiver]:
    receiver = AlertReceiver()
    thread = threading.Thread(target=receiver.server.serve_forever, daemon=True)
    thread.start()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()
