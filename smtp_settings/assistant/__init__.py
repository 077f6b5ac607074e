"""Set up Microsoft 365: the documentation's five Entra ID and Exchange Online steps, each
checked with Validate's own steps, ending in filled-in Manage SMTP settings.

Its face: callers use ``from smtp_settings import assistant`` and
``assistant.setup_progress(...)``; ``views``, ``forms``, ``script`` and ``clouds`` are its own.
"""

from __future__ import annotations

from smtp_settings.assistant.service import (
    HeldSecret,
    SetupNotReady,
    SetupProgress,
    setup_assistant_get,
    setup_assistant_restart,
    setup_assistant_save,
    setup_certificate_create,
    setup_check_start,
    setup_failed_step,
    setup_manage_initial,
    setup_progress,
    setup_secret_erase,
    setup_secret_hold,
    setup_secret_read,
    setup_secrets_purge,
    setup_use_settings,
)
