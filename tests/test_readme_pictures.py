"""The README's pictures are complete and current: every navigation entry has one, and no
template a picture shows changed since `make screenshots` took it (docs/screenshots/
manifest.json holds the digests of the templates at that moment)."""

from __future__ import annotations

from .readme_pictures import (
    FOLDER,
    PICTURES,
    ROOT,
    digest,
    manifest_read,
    navigation_entries,
)


def test_every_navigation_entry_has_a_picture() -> None:
    entries = navigation_entries()
    assert {"accounts:users", "activity", "smtp_settings:outbox", "smtp_settings:setup"} <= entries
    pictured = {picture.url_name for picture in PICTURES}
    assert sorted(entries - pictured) == []


def test_every_picture_was_taken_from_todays_templates() -> None:
    manifest = manifest_read()
    stale = [
        f"{picture.file} (run make screenshots)"
        for picture in PICTURES
        if manifest.get(picture.file, {}).get("digest") != digest(picture.template)
        or not (FOLDER / picture.file).is_file()
    ]
    assert stale == []


def test_the_readme_shows_every_picture() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [p.file for p in PICTURES if f"(docs/screenshots/{p.file})" not in readme]
    assert missing == []
