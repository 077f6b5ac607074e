"""One HTTPS session for everything that carries a credential: token requests and Graph.

What it sends goes to the hosts it was made for, and nowhere else: no redirect is
followed, a URL that two parsers could read differently is refused, and TLS is always
verified against ``tls.client_context()``'s trust. Each request has one deadline for the
whole exchange (``deadline.exchange_deadline``: a server trickling bytes cannot hold a
worker), and there are no retries: the caller decides what a failure means.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

import requests
import requests.adapters
import urllib3.util

from smtp_settings.mail import tls
from smtp_settings.mail.deadline import exchange_deadline, watch_pools

Origin = tuple[str, int]


class EndpointRefused(requests.exceptions.RequestException):
    """A request the console would not send: to another host, or after a redirect."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def origin_of(url: str) -> Origin:
    """``(host, port)`` of a URL as ``urlsplit`` reads it; port -1 when unreadable."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    return ((parts.hostname or "").lower(), port or 443)


def origin_of_host(host_port: str) -> Origin:
    """``host[:port]`` (an entry of SMTP_GRAPH_HOSTS, say) as an origin, https's port 443."""
    return origin_of(f"https://{host_port.strip()}")


class _TrustingAdapter(requests.adapters.HTTPAdapter):
    """Trust is ``tls.client_context()``'s alone. Left to itself, requests names a CA file
    for every new connection (certifi's, or REQUESTS_CA_BUNDLE's), and urllib3 then loads
    it into that shared context: 20 ms a connection, and certifi's roots added to the
    trust the console decided. The context already holds the system store and both
    variables' files."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_context"] = tls.client_context()
        super().init_poolmanager(*args, **kwargs)
        watch_pools(self.poolmanager)  # so that a deadline can end a blocked read

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        return watch_pools(super().proxy_manager_for(proxy, **proxy_kwargs))

    def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        kwargs["verify"] = True  # whatever a caller asks: never off, never another file
        return super().send(request, *args, **kwargs)

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        super().cert_verify(conn, url, verify, cert)
        conn.ca_certs = None
        conn.ca_cert_dir = None


def _foreign(origin: Origin, host: str) -> str:
    return f"A request was pointed at {host}, another host than {origin[0]}."


def _redirected(status: int, host: str) -> str:
    return f"The server answered {status} and sends the request on to {host}."


class PinnedSession(requests.Session):
    """An HTTPS client pinned to ``origin`` (and, for GETs only, to what ``may_get``
    allows: MSAL's instance discovery asks Microsoft's own hosts, without the secret).

    ``foreign`` and ``redirected`` word the refusals for the caller's peer (what would
    have been sent where)."""

    def __init__(
        self,
        origin: Origin,
        *,
        timeout: float,
        may_get: Callable[[Origin], bool] | None = None,
        foreign: Callable[[Origin, str], str] = _foreign,
        redirected: Callable[[int, str], str] = _redirected,
    ) -> None:
        super().__init__()
        self.origin = (origin[0].lower(), origin[1])
        self.timeout = timeout
        self._may_get = may_get
        self._foreign = foreign
        self._redirected = redirected
        # The same trust as SMTP: the system store plus SSL_CERT_FILE / REQUESTS_CA_BUNDLE.
        self.verify = True
        self.mount("https://", _TrustingAdapter())

    def allowed(self, method: str, url: str) -> bool:
        # Parsed the way the HTTP library will connect (urllib3), and refused outright when
        # two parsers could disagree (a backslash, user info, odd characters).
        if "\\" in url or not url.isascii() or any(ch.isspace() for ch in url):
            return False
        parsed = urllib3.util.parse_url(url)
        if parsed.scheme != "https" or parsed.auth or not parsed.host:
            return False
        origin = (parsed.host.lower(), parsed.port or 443)
        if origin != origin_of(url):
            return False
        if origin == self.origin:
            return True
        return method.upper() == "GET" and self._may_get is not None and self._may_get(origin)

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        method, url = str(method), str(url)
        if not self.allowed(method, url):
            raise EndpointRefused("foreign_host", self._foreign(self.origin, urlsplit(url).netloc))
        kwargs["allow_redirects"] = False
        # Within the caller's deadline if one runs (a whole token step), else its own: at
        # the deadline the connection's socket is shut down, which ends a blocked read.
        with exchange_deadline(self.timeout) as exchange:
            left = exchange.remaining()
            if exchange.expired or left <= 0:
                raise requests.exceptions.Timeout(f"no answer within {exchange.seconds:g} s")
            kwargs["timeout"] = left
            try:
                # Not streamed: the body too is read within the deadline.
                response = super().request(method, url, *args, **kwargs)
            except requests.exceptions.RequestException:
                if exchange.expired:
                    raise requests.exceptions.Timeout(
                        f"no answer within {exchange.seconds:g} s"
                    ) from None
                raise
        if 300 <= response.status_code < 400:
            location = response.headers.get("Location", "")
            raise EndpointRefused(
                "redirect",
                self._redirected(
                    response.status_code, urlsplit(location).netloc or location or "elsewhere"
                ),
            )
        return response


def origins_allowed(entries: Iterable[str]) -> frozenset[Origin]:
    """An allow-list of ``host[:port]`` entries as origins (https's port when none)."""
    return frozenset(origin_of_host(entry) for entry in entries if entry.strip())
