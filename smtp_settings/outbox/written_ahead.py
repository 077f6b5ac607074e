"""The drain's next message, written while the server has the one before.

A message waits for the server's answer about half of a drain's time, and writing the next
one (post_office's message, then its MIME as it will leave) takes about a third of what is
left of a message's time in the worker. Both go on together: the transport calls back once
the message is written to the server and before reading its answer (``Transport.send``'s
``meanwhile``), and the next message is written then. Only the writing goes ahead: the
next message is sent after this one's sent mark, as before.
"""

from __future__ import annotations

from django.core.mail import EmailMessage

from smtp_settings.mail.backend import EmailBackend, Outgoing
from smtp_settings.models import Delivery

Written = tuple[EmailMessage, Outgoing | None]


class WrittenAhead:
    def __init__(self) -> None:
        self._ready: dict[int, Written] = {}

    def take(self, delivery: Delivery, backend: EmailBackend) -> Written:
        """The message and how it leaves: written ahead, or now."""
        ready = self._ready.pop(delivery.pk, None)
        if ready is not None:
            return ready
        message = delivery.email.email_message()
        return message, backend.outgoing(message)

    def write(self, delivery: Delivery, backend: EmailBackend) -> bool:
        """Writes ``delivery``'s message now; False if it was written already. Never raises: a
        message that cannot be written is written again at its turn, and fails there as its
        own failure, not the one the server has now."""
        if delivery.pk in self._ready:
            return False
        try:
            message = delivery.email.email_message()
            self._ready = {delivery.pk: (message, backend.outgoing(message))}
        except Exception:  # see above
            self._ready = {}
        return True

    def forget(self) -> None:
        """The batch went back to the queue: another drain may send its messages."""
        self._ready = {}
