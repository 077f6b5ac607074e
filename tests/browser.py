"""Playwright driving Debian's Chromium (Playwright's own browser download is not used)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

CHROMIUM = os.environ.get("SEI_CHROMIUM", "/usr/bin/chromium")
# Without these, Chromium phones home at start and waits on a network that is not there.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    if not shutil.which(CHROMIUM):
        pytest.fail(f"Chromium not found at {CHROMIUM}: install Debian's chromium package")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context()
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


def sign_in(page: Any, base_url: str, username: str, password: str) -> None:
    page.goto(f"{base_url}/")
    page.get_by_label("Username", exact=True).fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base_url}/")


# Every link, button and field in the page's content must lie inside the window, and no
# element may stick out of the box that holds it (a PowerShell script keeps its lines and
# scrolls inside its own box: it is text to copy, not an action).
_OUT_OF_REACH_JS = """
() => {
  const width = window.innerWidth;
  const name = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
    + (typeof el.className === 'string' && el.className
       ? '.' + el.className.trim().split(/\\s+/).join('.') : '')
    + ' "' + (el.innerText || el.value || '').trim().slice(0, 30) + '"';
  const skip = (el) => el.closest('pre, .visually-hidden, thead');
  const problems = [];
  const content = document.querySelector('#content');
  for (const el of content.querySelectorAll('a, button, input, select, textarea, summary')) {
    const box = el.getBoundingClientRect();
    if (skip(el) || (box.width === 0 && box.height === 0)) continue;
    if (box.left < -0.5 || box.right > width + 0.5) {
      problems.push(name(el) + ' lies at ' + Math.round(box.left) + '..'
        + Math.round(box.right) + ' outside 0..' + width);
    }
  }
  for (const el of content.querySelectorAll('*')) {
    if (skip(el)) continue;
    const box = el.getBoundingClientRect();
    if (box.width === 0 && box.height === 0) continue;
    const style = getComputedStyle(el);
    if (['auto', 'scroll'].includes(style.overflowX) && el.scrollWidth > el.clientWidth + 1) {
      problems.push(name(el) + ' scrolls sideways by ' + (el.scrollWidth - el.clientWidth));
    }
    const parent = el.parentElement;
    if (!parent || style.position === 'absolute' || style.position === 'fixed') continue;
    const outer = parent.getBoundingClientRect();
    if (box.right > outer.right + 1 || box.left < outer.left - 1) {
      const by = Math.max(box.right - outer.right, outer.left - box.left);
      problems.push(name(el) + ' sticks out of ' + name(parent) + ' by ' + Math.round(by));
    }
  }
  if (document.documentElement.scrollWidth > width) {
    problems.push('the page scrolls sideways by ' + (document.documentElement.scrollWidth - width));
  }
  return problems;
}
"""


def out_of_reach(page: Any) -> list[str]:
    """What lies outside the window or sticks out of its box, as readable lines (none: all fits)."""
    return list(page.evaluate(_OUT_OF_REACH_JS))
