"""Everything delivery can raise, as one hierarchy: callers catch ``DeliveryError``.

Each subclass says what an outbox should do with the message: try again later,
hold every message until an administrator fixes the settings, or give up on this
one message. ``classify`` turns the transport's and the token client's failures
into them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from smtp_settings.mail import jwt_claims
from smtp_settings.mail.oauth import Token, TokenError
from smtp_settings.mail.transport import SmtpFailure

# Failures without an answer that say nothing about the settings: the network, for now.
_PASSING_KINDS = frozenset({"timeout", "refused", "unreachable", "disconnected", "dns"})
_PASSING_TOKEN_KINDS = frozenset({"timeout", "unreachable", "service"})
# Entra ID's "temporarily unavailable" family.
_PASSING_AADSTS = frozenset({90033})
# Refusals that concern one message (its recipients or its content), not the settings.
_MESSAGE_KINDS = frozenset(
    {"rcpt_refused", "data_refused", "outside_organisation", "address_not_ascii", "unwritable"}
)


class DeliveryError(Exception):
    """A message could not be delivered: where, what kind, and the server's answer."""

    disposition: ClassVar[str] = "fail"

    def __init__(
        self,
        message: str,
        *,
        stage: str,
        kind: str,
        answer: str = "",
        codes: list[int] | None = None,
        token_claims: Mapping[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.stage = stage
        self.kind = kind
        self.answer = answer
        self.codes = codes or []
        # What the token the session signed in with said (roles, oid; never the token):
        # the diagnosis rules causes out with it, as Validate does after its token step.
        self.token_claims = token_claims
        # The server said when to try again (HTTP 429/503 Retry-After): then, not sooner or
        # later than that (a deferral waits exactly this long instead of its backoff).
        self.retry_after = retry_after


class TemporaryFailure(DeliveryError):
    """Try again later: a 4xx answer, a timeout, a refused connection, Entra ID's 5xx."""

    disposition = "defer"


class CredentialFailure(DeliveryError):
    """The settings or credentials are wrong: every message would fail until they are fixed."""

    disposition = "hold"


class MessageRefused(DeliveryError):
    """This message only: a refused recipient, refused content, a From it may not use."""

    disposition = "fail"


def classify(failure: SmtpFailure | TokenError, *, token: Token | None = None) -> DeliveryError:
    if isinstance(failure, TokenError):
        temporary = failure.kind in _PASSING_TOKEN_KINDS or bool(
            _PASSING_AADSTS & set(failure.error_codes)
        )
        kind_class = TemporaryFailure if temporary else CredentialFailure
        return kind_class(
            failure.message, stage="token", kind=failure.kind, codes=failure.error_codes
        )
    answer = failure.answer
    # A server's answer says it by its first digit; without one, the kind of failure does.
    if answer.startswith("4") if answer else failure.kind in _PASSING_KINDS:
        kind_class = TemporaryFailure
    elif failure.kind in _MESSAGE_KINDS:
        kind_class = MessageRefused
    else:
        kind_class = CredentialFailure
    claims = jwt_claims.read_claims(token.access_token) if token else None
    return kind_class(
        failure.message, stage=failure.stage, kind=failure.kind, answer=answer, token_claims=claims
    )
