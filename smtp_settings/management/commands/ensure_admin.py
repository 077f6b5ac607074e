"""Create the first administrator on the first start, and say how to sign in."""

from __future__ import annotations

import os
import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Create a superuser from DJANGO_SUPERUSER_USERNAME / _PASSWORD / _EMAIL when no "
        "user exists yet (a generated password, printed once, when none is given)."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--url", default="http://127.0.0.1:8000", help="Where the console listens."
        )

    def handle(self, *args: Any, url: str, **options: Any) -> None:
        user_model = get_user_model()
        username = os.environ.get("DJANGO_SUPERUSER_USERNAME") or "admin"
        first = user_model.objects.filter(is_superuser=True).order_by("pk").first()
        if first is not None:
            self.stdout.write(
                f"SEI Administration: open {url} and sign in as an administrator. "
                f'(Forgotten password: make manage ARGS="changepassword {first.get_username()}")'
            )
            return
        password = os.environ.get("DJANGO_SUPERUSER_PASSWORD")
        generated = not password
        password = password or secrets.token_urlsafe(12)
        email = os.environ.get("DJANGO_SUPERUSER_EMAIL", "")
        user_model.objects.create_superuser(username=username, email=email, password=password)
        self.stdout.write(self.style.SUCCESS(f"Created the administrator account '{username}'."))
        if generated:
            # Printed this once only: it is stored hashed and cannot be shown again.
            self.stdout.write(
                f"SEI Administration: open {url} and sign in as '{username}' with the password "
                f"{password}  (shown only now; change it with: make manage "
                f'ARGS="changepassword {username}")'
            )
        else:
            self.stdout.write(
                f"SEI Administration: open {url} and sign in as '{username}' with the password "
                "from DJANGO_SUPERUSER_PASSWORD."
            )
