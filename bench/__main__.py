"""`make bench`: each row a ratio against a baseline measured side by side in the same run.

The machines are shared and noisy, so nothing is an absolute time: every round runs the
console and its baseline back to back, and the table gives min/median/max of the ratios.
Nothing asserts a number; a run that fails outright exits non-zero.
"""

from __future__ import annotations

import argparse
import atexit
import os
import re
import secrets
import shutil
import statistics
import sys
import tempfile
import warnings
from datetime import UTC, datetime
from pathlib import Path


def _environment() -> None:
    from cryptography.fernet import Fernet

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sei_admin.settings")
    os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(50))
    os.environ.setdefault("SEI_ENCRYPTION_KEYS", Fernet.generate_key().decode())
    if "SEI_VAR_DIR" not in os.environ:
        var = tempfile.mkdtemp(prefix="sei-bench-var-")
        atexit.register(shutil.rmtree, var, ignore_errors=True)
        os.environ["SEI_VAR_DIR"] = var
    os.environ.setdefault("DJANGO_LOG_LEVEL", "WARNING")
    # The page rows talk to this process's own Django over plain HTTP.
    os.environ.setdefault("DJANGO_SECURE_SSL_REDIRECT", "false")
    os.environ.setdefault("DJANGO_STATIC_MANIFEST", "false")
    # The bench signs in with a session made for it, which has no second factor; the
    # pages' own queries are measured, not the sign-in's.
    os.environ.setdefault("SEI_REQUIRE_2FA", "false")


_COMPARE = {"≤": float.__le__, "≥": float.__ge__, "<": float.__lt__, ">": float.__gt__}


def _goal_met(goal: str, median: float) -> str:
    """ "yes" or "no" for a goal like "≤ 1.5 (median)" or "1 (...)"; "" for a reference row."""
    match = re.match(r"\s*([≤≥<>]?)\s*([0-9.]+)", goal)
    if not match:
        return ""
    sign, number = match.groups()
    met = _COMPARE[sign](median, float(number)) if sign else median == float(number)
    return "yes" if met else "**no**"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--messages", type=int, default=200)
    # A drain of 200 messages lasts a few tenths of a second, mostly the workers' start.
    parser.add_argument("--outbox-messages", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=Path("var/bench"))
    parser.add_argument(
        "--only",
        nargs="*",
        default=[],
        help="rows to run: p1 graph p3 p4 pages memory (default all)",
    )
    args = parser.parse_args()
    # whitenoise's note that collectstatic has not run: true, and not the bench's news.
    warnings.filterwarnings("ignore", message="No directory at")
    # Redis serves only P3's console: this process measures on its own throw-away files.
    redis_url = os.environ.pop("REDIS_URL", "")
    os.environ.pop("SEI_CACHE_URL", None)
    _environment()
    import django

    django.setup()
    from bench import graph, outbox, pages, sending, stack_memory, validate
    from bench.sandbox_process import SandboxProcess

    world = SandboxProcess()
    wanted = set(args.only) or {"p1", "graph", "p3", "p4", "pages", "memory"}
    var = Path(os.environ["SEI_VAR_DIR"])
    rows: list[dict] = []
    try:
        if "p3" in wanted:
            rows += validate.measure(world, rounds=args.rounds, var=var, redis_url=redis_url)
        if "p1" in wanted:
            rows += sending.measure(world, rounds=args.rounds, messages=args.messages)
        if "graph" in wanted:
            rows += graph.measure(world, rounds=args.rounds, messages=args.messages)
        if "p4" in wanted:
            rows += outbox.measure(
                world, rounds=args.rounds, messages=args.outbox_messages, var=var
            )
        from django.conf import settings

        # The page rows validate against the sandbox's token endpoint.
        settings.SMTP_OAUTH_AUTHORITY_HOSTS = [world.info["authority_host"]]
        if "pages" in wanted:
            rows += pages.measure(form_values=world.info["form_values"])
        if "memory" in wanted:
            rows += stack_memory.measure()
    finally:
        world.stop()
    lines = [
        f"# make bench, {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC, {args.rounds} rounds",
        "",
        "| row | measure | goal | min | median | max | goal met |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        values = row["values"]
        median = statistics.median(values)
        lines.append(
            f"| {row['name']} | {row['measure']} | {row['goal']} | {min(values):.2f} "
            f"| {median:.2f} | {max(values):.2f} | {_goal_met(row['goal'], median)} |"
        )
    for row in rows:
        lines.append(f"\n{row['name']}: {row['detail']}")
    table = "\n".join(lines)
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"bench-{datetime.now(UTC):%Y%m%dT%H%M%S}.md"
    path.write_text(table + "\n")
    print(f"\nSaved to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
