"""Loaded by pytest before Django (``-p tests.environment``): the test process's settings.

Tests run with production-like settings (DEBUG off), so they must be given the
secrets that production requires; each run gets fresh ones.
"""

from __future__ import annotations

import os
import secrets
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
# The file-system broker and SQLite files of a test run live apart from a developer's var/.
os.environ.setdefault("SEI_VAR_DIR", tempfile.mkdtemp(prefix="sei-test-var-"))
# Playwright's sync API runs an event loop in the test thread; Django's ORM is still safe there.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
