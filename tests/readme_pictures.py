"""The README's pictures: which page each shows, and the manifest `make screenshots` writes.

The manifest (docs/screenshots/manifest.json) records, for each picture, a digest of the
templates it shows (the page's own and every template it includes) when it was taken:
tests/test_readme_pictures.py fails when a template changed since, or when a navigation
entry has no picture.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"
FOLDER = ROOT / "docs" / "screenshots"
MANIFEST = FOLDER / "manifest.json"


@dataclass(frozen=True)
class Picture:
    file: str
    # The URL name of the page it shows (a navigation entry), and the template rendering it.
    url_name: str
    template: str
    caption: str


PICTURES: tuple[Picture, ...] = (
    Picture("home.png", "home", "home.html", "Home"),
    Picture(
        "administration.png",
        "administration",
        "administration/index.html",
        "Administration: mail at a glance, with a banner per cause",
    ),
    Picture("manage-smtp.png", "smtp_settings:manage", "smtp_settings/manage.html", "Manage SMTP"),
    Picture(
        "validate-passed.png",
        "smtp_settings:manage",
        "smtp_settings/_run.html",
        "A passed validation",
    ),
    Picture(
        "validate-failed.png",
        "smtp_settings:manage",
        "smtp_settings/_run.html",
        "A failed validation with its cause and fix",
    ),
    Picture(
        "setup.png",
        "smtp_settings:setup",
        "smtp_settings/setup.html",
        "Set up Microsoft 365",
    ),
    Picture(
        "fallback.png",
        "smtp_settings:fallback",
        "smtp_settings/fallback.html",
        "The fallback connection",
    ),
    Picture("outbox.png", "smtp_settings:outbox", "smtp_settings/outbox.html", "The Outbox"),
    Picture("users.png", "accounts:users", "accounts/users.html", "Users"),
    Picture(
        "alerts.png",
        "alerting:alerts",
        "alerting/alerts.html",
        "Alerts: destinations outside mail",
    ),
    Picture("activity.png", "activity", "administration/activity.html", "Activity"),
)

_INCLUDE = re.compile(r"""\{%\s*include\s+["']([^"']+)["']""")
_URL = re.compile(r"""\{%\s*url\s+'([^']+)'""")


def templates_shown(template: str) -> list[str]:
    """``template`` and every template it includes, however deep."""
    found: list[str] = []
    todo = [template]
    while todo:
        name = todo.pop()
        if name in found:
            continue
        found.append(name)
        todo += _INCLUDE.findall((TEMPLATES / name).read_text())
    return sorted(found)


def digest(template: str) -> str:
    hashed = hashlib.sha256()
    for name in templates_shown(template):
        hashed.update(name.encode() + b"\0" + (TEMPLATES / name).read_bytes() + b"\0")
    return hashed.hexdigest()


def navigation_entries() -> set[str]:
    """The URL names an administrator navigates by: the navigation panel, the Administration
    page's tools, and the links beside Manage SMTP's title (the Outbox, the assistant)."""
    base = (TEMPLATES / "base.html").read_text()
    panel = base[base.index('<nav class="nav-panel"') : base.index("</nav>")]
    index = (TEMPLATES / "administration" / "index.html").read_text()
    tools = index[index.index('<ul class="tools">') : index.index("</ul>")]
    manage = (TEMPLATES / "smtp_settings" / "manage.html").read_text()
    beside = " ".join(re.findall(r"<a [^>]*aside-link[^>]*>", manage))
    return set(_URL.findall(panel) + _URL.findall(tools) + _URL.findall(beside))


def manifest_write() -> None:
    entries = {
        picture.file: {
            "url_name": picture.url_name,
            "caption": picture.caption,
            "templates": templates_shown(picture.template),
            "digest": digest(picture.template),
        }
        for picture in PICTURES
    }
    MANIFEST.write_text(json.dumps(entries, indent=2, sort_keys=True) + "\n")


def manifest_read() -> dict[str, dict[str, object]]:
    return json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {}
