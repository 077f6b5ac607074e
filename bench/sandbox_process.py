"""The sandbox in a process of its own, so that its server threads do not share the
measuring process's interpreter lock: a client is measured, not the client plus the server."""

from __future__ import annotations

import multiprocessing
from multiprocessing.connection import Connection
from typing import Any


def _serve(pipe: Connection) -> None:
    import warnings

    # aiosmtpd's own deprecation, once per session: not the bench's news.
    warnings.filterwarnings("ignore", message="Session.login_data is deprecated")
    from tests.sandbox import exchange
    from tests.sandbox.world import Sandbox

    # Exchange's 3 connections per mailbox raised: post_office's row sends on five.
    exchange.MAX_CONNECTIONS_PER_MAILBOX = 50
    world = Sandbox().start()
    world.exchange.handler.allow_anonymous = True  # baselines send without AUTH
    world.app.roles["https://graph.microsoft.com"] = ["Mail.Send"]  # the Graph row sends
    # As Microsoft's token endpoint does: a client that keeps its session asks again on the
    # same connection (the console does; a script making a session per run cannot).
    world.entra.keep_alive = True
    pipe.send(
        {
            "form_values": world.form_values(),
            "ca_bundle": str(world.ca_bundle),
            "smtp_port": world.exchange.port,
            "authority_host": world.authority_host,
            "graph_host": world.graph.host,
        }
    )
    while True:
        command = pipe.recv()
        if command == "token_requests":
            pipe.send(world.entra.token_requests)
        elif command == "delivered":
            pipe.send(len(world.exchange.delivered))
        else:
            world.stop()
            pipe.send("stopped")
            return


class SandboxProcess:
    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._pipe, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child,), daemon=True)
        self._process.start()
        self.pid = self._process.pid
        self.info: dict[str, Any] = self._pipe.recv()

    def ask(self, command: str) -> Any:
        self._pipe.send(command)
        return self._pipe.recv()

    def stop(self) -> None:
        self.ask("stop")
        self._process.join(timeout=10)
