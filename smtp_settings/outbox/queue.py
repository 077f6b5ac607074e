"""The console's ``EMAIL_BACKEND``: ``send_mail()`` and friends write outbox rows, nothing else.

Rows are post_office's ``Email`` (and ``Attachment``) plus our ``Delivery``. We
write them ourselves rather than through post_office's queueing backend because
that one renders subject and body as Django templates (a body containing ``{{``
would change) and treats a text attachment as a file name to open.
"""

from __future__ import annotations

from collections.abc import Sequence
from email.mime.base import MIMEBase
from email.utils import formatdate
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend
from django.db import transaction
from post_office.models import STATUS, Email
from post_office.utils import create_attachments

from smtp_settings.mail.backend import message_id_for
from smtp_settings.models import SmtpSettings
from smtp_settings.outbox import service


class OutboxBackend(BaseEmailBackend):
    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        if not email_messages:
            return 0
        sent_as = _sent_as()
        with transaction.atomic():
            emails = [self._store(message, sent_as) for message in email_messages]
            service.outbox_accept(emails=emails)
        return len(emails)

    @staticmethod
    def _store(message: EmailMessage, sent_as: str) -> Email:
        headers: dict[str, Any] = dict(message.extra_headers)
        # The message's identity is fixed now, not at each delivery: a copy sent again (a
        # worker died after the server took it) carries the same Message-ID and Date, so a
        # receiver can recognise it. post_office keeps the Message-ID in its own column.
        given_id = [name for name in headers if name.lower() == "message-id"]
        message_id = str(headers.pop(given_id[0])) if given_id else ""
        for name in given_id[1:]:
            del headers[name]
        if not any(name.lower() == "date" for name in headers):
            headers["Date"] = formatdate(localtime=settings.EMAIL_USE_LOCALTIME)
        if message.reply_to:
            headers.setdefault("Reply-To", ", ".join(str(v) for v in message.reply_to))
        html = next(
            (
                content
                for content, kind in getattr(message, "alternatives", [])
                if kind == "text/html"
            ),
            "",
        )
        email = Email.objects.create(
            from_email=message.from_email,
            to=list(message.to),
            cc=list(message.cc),
            bcc=list(message.bcc),
            subject=message.subject,
            message=message.body,
            html_message=html,
            headers=headers,
            message_id=message_id
            or message_id_for(sent_as or message.from_email or settings.DEFAULT_FROM_EMAIL),
            status=STATUS.queued,
        )
        files: dict[str, Any] = {}
        for attachment in message.attachments:
            if isinstance(attachment, MIMEBase):
                files[attachment.get_filename() or "attachment"] = {
                    # Kept encoded, with its headers: rebuilt as it was at delivery.
                    "file": ContentFile(attachment.get_payload()),
                    "mimetype": attachment.get_content_type(),
                    "headers": dict(attachment.items()),
                }
            else:
                name, content, mimetype = attachment
                data = content.encode() if isinstance(content, str) else content
                files[name or "attachment"] = {"file": ContentFile(data), "mimetype": mimetype}
        if files:
            email.attachments.add(*create_attachments(files))
        return email


def _sent_as() -> str:
    """The address every message leaves from when Use sender email is on (else ""): its
    Message-ID is then on the Sender Email's domain, like the From the receiver sees."""
    saved = (
        SmtpSettings.objects.filter(pk=SmtpSettings.SINGLETON_PK)
        .values_list("sender_email", "use_sender_email")
        .first()
    )
    return saved[0] if saved and saved[1] else ""
