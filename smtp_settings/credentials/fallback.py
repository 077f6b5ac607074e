"""When the credential in use was refused and the other one got the token: said once, in
Activity and as an alert, and kept on the row for the banner until a credential changes."""

from __future__ import annotations

import logging

from django.utils import timezone

from activity.models import Kind as ActivityKind
from activity.service import activity_record
from smtp_settings.credentials.model import Credential
from smtp_settings.mail import endpoint, oauth
from smtp_settings.signals import alert_raised

logger = logging.getLogger(__name__)


def fallback_noted(
    settings: endpoint.MailSettings, error: oauth.TokenError, *, refused_id: int, used_id: int
) -> None:
    """The mail engine's ``on_fallback`` for the saved settings."""
    refused = Credential.objects.filter(pk=refused_id).first()
    used = Credential.objects.filter(pk=used_id).first()
    if refused is None or used is None or refused.refused_at is not None:
        return  # said already (or the credentials changed meanwhile)
    answer = str(error)
    if error.error_codes and not error.message.startswith("AADSTS"):
        answer = f"AADSTS{error.error_codes[0]}: {error.message}"  # Entra's text names it mostly
    claimed = Credential.objects.filter(pk=refused_id, refused_at__isnull=True).update(
        refused_at=timezone.now(), refused_answer=answer[:2000]
    )
    if not claimed:
        return  # another worker said it
    summary = (
        f"Entra ID refused the credential in use ({refused.name}); the console switched to "
        f"the other one ({used.name}) and mail goes out with it. Entra's answer: {answer}"
    )
    logger.warning("Credential fallback: %s refused, %s used", refused.name, used.name)
    activity_record(kind=ActivityKind.CREDENTIAL_FALLBACK, summary=summary)
    alert_raised.send(
        sender=Credential,
        key=f"credential-fallback:{refused_id}:{used_id}",
        kind="credential.fallback",
        title="Mail signs in with the other credential: the one in use was refused",
        body=f"{summary}\n\nIn the Credentials section of Manage SMTP, make {used.name} the "
        "one in use (or fix the refused one in Entra ID).",
    )
