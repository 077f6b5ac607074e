"""The house's boundaries, checked on the code's own imports.

The mail engine (``smtp_settings/mail``) takes plain values: it never imports the
page (forms, views), the database (models, ``django.db``) or the services and tasks
above it. Pages never reach into the mail engine; tasks hold no logic of their own.

The Packages table of docs/architecture.md is written here as data (``PACKAGES``) and
checked for every module of the console; the project's own imports are read with ``ast``,
and so are the dotted paths that settings name and a module reads through ``settings``.
"""

from __future__ import annotations

import ast
import fnmatch
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


# -- the Packages table of docs/architecture.md, as data --------------------------------------

# Row name -> (its modules, as dotted-name patterns; what it may import: rows, or a module
# or package by its dotted name). A module may import the modules of its own row; the most
# specific pattern names a module's row.
PACKAGES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "project": (
        ("sei_admin", "sei_admin.*"),
        ("smtp_settings", "accounts", "activity", "alerting", "text"),
    ),
    "activity": (("activity", "activity.*"), ("text",)),
    "accounts": (("accounts", "accounts.*"), ("permissions", "links", "activity")),
    "text": (("external_text", "external_text.*"), ()),
    # Microsoft's facts: data and pure functions, for every layer (the engine included).
    "facts": (("smtp_settings.mail.microsoft",), ()),
    # PowerShell as the console writes it (quoting, the service principal's ID): diagnosis
    # commands and the assistant's script say it one way.
    "powershell": (("smtp_settings.powershell",), ()),
    # Known failures as data, for everyone who explains one: Validate, the outbox, the
    # health check (through the token check), the assistant.
    "diagnosis": (("smtp_settings.diagnosis",), ("mail", "facts", "powershell")),
    # Leaves of Django only that every part of Manage SMTP may use.
    "permissions": (("smtp_settings.permissions",), ()),
    "links": (("smtp_settings.links",), ()),
    # What Manage SMTP announces for others to act on (alerts), so it imports none of them.
    "signals": (("smtp_settings.signals",), ()),
    # Knows the tasks by name only: their routes (settings.CELERY_TASK_ROUTES), never code.
    "enqueue": (("smtp_settings.enqueue",), ("tasks",)),
    "rows": (
        (
            *("smtp_settings.models", "smtp_settings.fields", "smtp_settings.crypto"),
            *("smtp_settings.credentials", "smtp_settings.credentials.model"),
            "smtp_settings.credentials.columns",
        ),
        ("facts",),
    ),
    # Credentials: made, imported, added, promoted, removed (the Credentials section's work).
    "credentials": (
        (
            "smtp_settings.credentials.service",
            "smtp_settings.credentials.forms",
            "smtp_settings.credentials.section",
        ),
        ("rows", "mail", "facts", "activity", "outbox"),
    ),
    # The saved settings' word that the token request fell back to the other credential.
    "credential fallback": (
        ("smtp_settings.credentials.fallback",),
        ("rows", "mail", "activity", "signals"),
    ),
    "field rules": (
        ("smtp_settings.forms", "smtp_settings.validators", "smtp_settings.transport_form"),
        ("rows", "facts"),
    ),
    "mail": (("smtp_settings.mail", "smtp_settings.mail.*"), ("facts", "text")),
    "sending": (("smtp_settings.sending",), ("rows", "mail", "credential fallback")),
    "validation": (
        ("smtp_settings.validation", "smtp_settings.validation.*"),
        ("rows", "mail", "facts", "activity", "enqueue", "diagnosis"),
    ),
    # The assistant's forms reuse Manage SMTP's field kinds (SecretInput, StrictEmailField).
    "assistant": (
        ("smtp_settings.assistant", "smtp_settings.assistant.*"),
        (
            *("rows", "field rules", "validation", "facts", "permissions", "links"),
            *("powershell", "credentials"),
        ),
    ),
    "outbox": (
        ("smtp_settings.outbox", "smtp_settings.outbox.*"),
        (
            "rows",
            "mail",
            "sending",
            "diagnosis",
            "activity",
            "enqueue",
            "links",
            # The fallback connection's alert (issue 20).
            "signals",
        ),
    ),
    "services": (
        ("smtp_settings.services",),
        # Save asks for a health check of the settings it saved.
        (
            *("rows", "outbox", "activity", "enqueue", "facts", "credentials"),
            "smtp_settings.monitoring.health_check",
        ),
    ),
    # Each worker's and beat's word that it runs.
    "heartbeats": (("smtp_settings.heartbeats",), ("rows",)),
    # Reminders, the health check and the alerts they send, mail at a glance, /healthz.
    "monitoring": (
        ("smtp_settings.monitoring", "smtp_settings.monitoring.*"),
        (
            *("heartbeats", "outbox", "sending", "smtp_settings.validation.token_check"),
            *("rows", "field rules", "facts", "permissions", "links", "enqueue", "signals"),
            "activity",
        ),
    ),
    # Alerts outside mail: hears Manage SMTP's signal and the activity trail; Manage SMTP
    # never imports it.
    "alerting": (
        ("alerting", "alerting.*"),
        ("rows", "activity", "links", "permissions", "signals", "field rules"),
    ),
    "pages": (
        (
            "smtp_settings.views",
            "smtp_settings.fallback_views",
            "smtp_settings.urls",
            "smtp_settings.context_processors",
            "smtp_settings.templatetags*",
            "smtp_settings.credentials.views",
        ),
        (
            *("services", "outbox", "validation", "assistant", "monitoring", "field rules"),
            *("rows", "permissions", "links", "credentials"),
        ),
    ),
    "tasks": (
        ("smtp_settings.tasks",),
        ("heartbeats", "outbox", "validation", "assistant", "monitoring", "enqueue"),
    ),
    # The app's wiring: its AppConfig, management commands.
    "wiring": (
        (
            "smtp_settings",
            "smtp_settings.apps",
            "smtp_settings.management*",
        ),
        # sendtestemail says where its message waits: the outbox, when EMAIL_BACKEND is it.
        ("assistant", "monitoring", "rows", "outbox", "links"),
    ),
}
# "Never", followed through every module on the way: pages and tasks do not reach the mail
# engine but through a row that may import it (a service: it hands the engine plain values).
NEVER_REACH = {"pages": "mail", "tasks": "mail"}
PROJECT_PACKAGES = (
    "sei_admin",
    "activity",
    "accounts",
    "alerting",
    "external_text",
    "smtp_settings",
)
SETTINGS_MODULE = "sei_admin.settings"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {
        _module_name(path): path
        for package in PROJECT_PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if "migrations" not in path.parts
    }


MODULES = project_modules()


def _owning_module(name: str) -> str | None:
    """The project module a dotted name lives in (``smtp_settings.models.SmtpSettings`` ->
    ``smtp_settings.models``), or None outside the project."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _settings_paths() -> dict[str, set[str]]:
    """Each setting -> the project modules its dotted-path strings name."""
    tree = ast.parse(MODULES[SETTINGS_MODULE].read_text())
    named: dict[str, set[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            found = {
                owner
                for constant in ast.walk(node.value)
                if isinstance(constant, ast.Constant) and isinstance(constant.value, str)
                for owner in [_owning_module(constant.value.removesuffix(".*"))]
                if owner and constant.value.split(".")[0] in PROJECT_PACKAGES
            }
            for target in targets:
                if isinstance(target, ast.Name) and found:
                    named.setdefault(target.id, set()).update(found)
    return named


SETTINGS_PATHS = _settings_paths()


def project_imports(module: str) -> set[str]:
    """The project modules ``module`` depends on: its imports, relative ones resolved, and
    the modules named by the settings it reads (``settings.X`` holding a dotted path)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # "from package import module" names the module; "from module import name", it.
            names = [f"{base}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            names = list(SETTINGS_PATHS.get(node.attr, ())) if node.value.id == "settings" else []
        else:
            continue
        found.update(owner for name in names if (owner := _owning_module(name)))
    return found - {module}


def row_of(module: str) -> str:
    best: tuple[int, str] | None = None
    for row, (patterns, _) in PACKAGES.items():
        for pattern in patterns:
            if fnmatch.fnmatchcase(module, pattern):
                specificity = len(pattern.rstrip("*"))
                if best is None or specificity > best[0]:
                    best = (specificity, row)
    assert best is not None, f"{module} is in no row of the Packages table"
    return best[1]


def _allowed(importer: str, imported: str) -> bool:
    row, target = row_of(importer), row_of(imported)
    if row == target:
        return True
    allowed = PACKAGES[row][1]
    return target in allowed or any(
        imported == entry or imported.startswith(f"{entry}.")
        for entry in allowed
        if entry not in PACKAGES
    )


def table_violations() -> list[str]:
    return [
        f"{module} ({row_of(module)}) imports {imported} ({row_of(imported)})"
        for module in MODULES
        for imported in sorted(project_imports(module))
        if not _allowed(module, imported)
    ]


def never_violations() -> list[str]:
    """Each page or task module that reaches a forbidden row, with the way it gets there."""
    found: list[str] = []
    for module in MODULES:
        forbidden = NEVER_REACH.get(row_of(module))
        if forbidden is None:
            continue
        seen, way = {module}, [[module]]
        while way:
            trail = way.pop()
            for imported in sorted(project_imports(trail[-1]) - seen):
                seen.add(imported)
                if row_of(imported) == forbidden:
                    found.append(" -> ".join([*trail, imported]))
                # A row that may import the forbidden one is its gateway: not followed.
                elif forbidden not in PACKAGES[row_of(imported)][1]:
                    way.append([*trail, imported])
    return found


def test_every_module_is_in_the_packages_table() -> None:
    assert len(MODULES) > 60
    for module in MODULES:
        row_of(module)


def test_every_module_imports_only_what_its_row_of_the_table_allows() -> None:
    assert table_violations() == []


def test_pages_and_tasks_never_reach_the_mail_engine_even_through_others() -> None:
    assert never_violations() == []


# Packages used through their face (``from smtp_settings import outbox``): what lies inside
# is theirs. Others may still read a module the table names (``validation.token_check``).
FACES = ("smtp_settings.outbox", "smtp_settings.validation", "smtp_settings.assistant")


def face_violations() -> list[str]:
    return [
        f"{module} imports {imported}: use {imported.rpartition('.')[0]}'s face"
        for module in MODULES
        for imported in sorted(project_imports(module))
        if imported.endswith(".service")
        and imported.rpartition(".")[0] in FACES
        and row_of(module) != row_of(imported)
    ]


def test_packages_with_a_face_are_used_through_it(tmp_path: Path) -> None:
    assert face_violations() == []
    views = "smtp_settings.views"
    try:
        MODULES[views] = _scratch(tmp_path, views, "\nfrom smtp_settings.outbox import service\n")
        assert face_violations() == [
            f"{views} imports smtp_settings.outbox.service: use smtp_settings.outbox's face"
        ]
    finally:
        MODULES.update(project_modules())


def _top_level_names(module: str) -> set[str]:
    names: set[str] = set()
    for node in ast.parse(MODULES[module].read_text()).body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.ImportFrom | ast.Import):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    return names


def test_dotted_paths_in_settings_name_what_exists() -> None:
    # A dotted path in settings is code wiring: it must name a module of the project and a
    # name in it (a stale task name or backend would fail only at run time). A module that
    # reads such a setting depends on what it names: the checks above count it as an import.
    tree = ast.parse(MODULES[SETTINGS_MODULE].read_text())
    paths = [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and node.value.split(".")[0] in PROJECT_PACKAGES
        and "." in node.value
        and " " not in node.value
        and not node.value.endswith(".sqlite3")  # a database file's name
    ]
    assert len(paths) > 20
    stale = []
    for written in paths:
        path = written.replace(":", ".")  # kombu's "module:Name" form (the broker transport)
        owner = _owning_module(path.removesuffix(".*"))
        rest = path.removesuffix(".*")[len(owner or "") + 1 :]
        if owner is None or (rest and rest.split(".")[0] not in _top_level_names(owner)):
            stale.append(written)
    assert stale == []
    assert SETTINGS_PATHS["EMAIL_BACKEND"] == {"smtp_settings.outbox.queue"}


def _scratch(tmp_path: Path, module: str, extra: str) -> Path:
    # The module's source with one more line, where the checks will read it instead.
    copy = tmp_path / module / MODULES[module].name
    copy.parent.mkdir()
    copy.write_text(MODULES[module].read_text() + extra)
    return copy


def test_the_checks_see_an_import_through_a_setting_and_one_through_a_module(
    tmp_path: Path,
) -> None:
    # The loader the engine once read (settings.SMTP_MAIL_SETTINGS_LOADER) counts as an
    # import; so does the mail engine reached from a page through a module in between.
    SETTINGS_PATHS["SMTP_MAIL_SETTINGS_LOADER"] = {"smtp_settings.services"}
    backend, status = "smtp_settings.mail.backend", "smtp_settings.monitoring.status"
    try:
        MODULES[backend] = _scratch(tmp_path, backend, "\nx = settings.SMTP_MAIL_SETTINGS_LOADER\n")
        MODULES[status] = _scratch(tmp_path, status, "\nfrom smtp_settings.mail import errors\n")
        violations = table_violations()
        assert f"{backend} (mail) imports smtp_settings.services (services)" in violations
        assert f"{status} (monitoring) imports smtp_settings.mail.errors (mail)" in violations
        assert any(
            way.startswith("smtp_settings.views -> ")
            and way.endswith(f"-> {status} -> smtp_settings.mail.errors")
            for way in never_violations()
        )
    finally:
        SETTINGS_PATHS.pop("SMTP_MAIL_SETTINGS_LOADER")
        MODULES.update(project_modules())
