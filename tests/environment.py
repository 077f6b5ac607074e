"""Loaded by pytest before Django (``-p tests.environment``): the test process's settings.

Tests run with production-like settings (DEBUG off), so they must be given the
secrets that production requires; each run gets fresh ones.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import tempfile

from cryptography.fernet import Fernet

os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(50))
os.environ.setdefault("SEI_ENCRYPTION_KEYS", Fernet.generate_key().decode())
os.environ.setdefault("DJANGO_DEBUG", "false")
# Tests talk plain HTTP to their own live server.
os.environ.setdefault("DJANGO_SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("DJANGO_SESSION_COOKIE_SECURE", "false")
os.environ.setdefault("DJANGO_CSRF_COOKIE_SECURE", "false")
os.environ.setdefault("DJANGO_WHITENOISE_USE_FINDERS", "true")
os.environ.setdefault("DJANGO_STATIC_MANIFEST", "false")
# Most tests are about other things and sign in with force_login(), which no second factor
# follows; the two-factor tests turn the requirement on themselves, and a test checks that
# it is on by default outside development.
os.environ.setdefault("SEI_REQUIRE_2FA", "false")
# Likewise most tests open an empty Manage SMTP to fill in its form; the assistant's tests
# turn the detour on themselves.
os.environ.setdefault("SEI_SETUP_ASSISTANT_FIRST", "false")
# The file-system broker and SQLite files of a test run live apart from a developer's var/.
_var = tempfile.mkdtemp(prefix="sei-test-var-")
atexit.register(shutil.rmtree, _var, ignore_errors=True)
os.environ.setdefault("SEI_VAR_DIR", _var)
os.environ.setdefault("DJANGO_STATIC_ROOT", os.path.join(_var, "static"))
os.makedirs(os.environ["DJANGO_STATIC_ROOT"], exist_ok=True)
# A queue of its own, so a console running beside the tests on the same Redis takes none of them.
os.environ.setdefault("CELERY_TASK_DEFAULT_QUEUE", f"sei-admin-test-{secrets.token_hex(4)}")
# Playwright's sync API runs an event loop in the test thread; Django's ORM is still safe there.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
