"""The house's boundaries, checked on the code's own imports.

The mail engine (``smtp_settings/mail``) takes plain values: it never imports the
page (forms, views), the database (models, ``django.db``) or the services and tasks
above it. Pages never reach into the mail engine; tasks hold no logic of their own.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAIL = ROOT / "smtp_settings" / "mail"


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _forbidden_for_mail(name: str) -> bool:
    if name.startswith("smtp_settings.") and not name.startswith("smtp_settings.mail"):
        return True
    if name.startswith(("activity", "accounts", "sei_admin")):
        return True
    return name.startswith(("django.db", "django.http", "django.forms", "django.contrib"))


@pytest.mark.parametrize("path", sorted(MAIL.glob("*.py")), ids=lambda p: p.name)
def test_the_mail_engine_imports_nothing_of_the_page_or_the_database(path: Path) -> None:
    bad = sorted(name for name in imported_modules(path) if _forbidden_for_mail(name))
    assert bad == [], f"{path.name} imports {bad}"


def test_the_mail_engine_loads_with_models_forms_and_views_blocked() -> None:
    # A fresh interpreter in which importing any page or database module fails outright.
    script = f"""
import importlib, pkgutil, sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.startswith(("django.db", "django.http", "django.forms")) or name in {{
            "smtp_settings.models", "smtp_settings.forms", "smtp_settings.views",
            "smtp_settings.services", "smtp_settings.tasks",
        }}:
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, Block())
sys.path.insert(0, {str(ROOT)!r})
import smtp_settings.mail as mail
for info in pkgutil.iter_modules(mail.__path__):
    importlib.import_module("smtp_settings.mail." + info.name)
print("ok")
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.stdout.strip() == "ok", result.stderr


@pytest.mark.parametrize(
    "path",
    [
        ROOT / "smtp_settings" / "views.py",
        ROOT / "smtp_settings" / "assistant" / "views.py",
        ROOT / "sei_admin" / "views.py",
    ],
    ids=lambda p: f"{p.parent.name}/{p.name}",
)
def test_pages_do_not_reach_into_the_mail_engine_or_tasks(path: Path) -> None:
    bad = sorted(
        name
        for name in imported_modules(path)
        if name.startswith(("smtp_settings.mail", "smtp_settings.tasks"))
    )
    assert bad == [], f"{path.name} imports {bad}"


def test_services_never_import_tasks() -> None:
    # Tasks import services; the other way round would be a cycle. Services enqueue by name.
    for path in [ROOT / "smtp_settings" / "services.py", *ROOT.glob("smtp_settings/*/service*.py")]:
        assert not any(n.startswith("smtp_settings.tasks") for n in imported_modules(path)), path


def _package_imports(package: str) -> list[tuple[str, str]]:
    return [
        (str(path.relative_to(ROOT)), name)
        for path in sorted((ROOT / package).rglob("*.py"))
        if "migrations" not in path.parts
        for name in imported_modules(path)
    ]


def test_the_activity_trail_imports_nothing_of_the_console() -> None:
    # Everyone records into it; it must not depend on anyone, or imports would go round.
    bad = [
        (path, name)
        for path, name in _package_imports("activity")
        if name.startswith(("smtp_settings", "accounts", "sei_admin"))
    ]
    assert bad == []


def test_manage_smtp_does_not_import_the_accounts_app() -> None:
    # accounts builds on smtp_settings (its permission); the other way would be a cycle.
    bad = [
        (path, name)
        for path, name in _package_imports("smtp_settings")
        if name.startswith(("accounts", "sei_admin"))
    ]
    assert bad == []


def test_accounts_does_not_import_the_project() -> None:
    bad = [
        (path, name) for path, name in _package_imports("accounts") if name.startswith("sei_admin")
    ]
    assert bad == []


def test_external_text_needs_no_one() -> None:
    # The mail engine, the activity trail and the log formatter all use it.
    bad = [
        (path, name)
        for path, name in _package_imports("external_text")
        if name.split(".")[0] in {"django", "smtp_settings", "accounts", "activity", "sei_admin"}
    ]
    assert bad == []
