"""The console's largest modules, functions and classes, in lines.

``python -m tests.sizes`` prints the 15 largest of each; ``tests/test_sizes.py`` holds the
limits (a function over 60 lines, a class over 250, unless it is data).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP_PACKAGES = ("sei_admin", "activity", "accounts", "external_text", "smtp_settings")


def app_files() -> list[Path]:
    return [
        path
        for package in APP_PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if "migrations" not in path.parts
    ]


def _walk(node: ast.AST, prefix: str) -> list[tuple[ast.AST, str]]:
    """Every function and class under ``node`` with its dotted name ("Outer.name")."""
    found: list[tuple[ast.AST, str]] = []
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            found.append((child, f"{prefix}{child.name}"))
            found += _walk(child, f"{prefix}{child.name}.")
    return found


def definitions(kind: type[ast.AST] | tuple[type[ast.AST], ...]) -> list[tuple[int, str]]:
    """(lines, "path:Outer.name") of every definition of ``kind``, nested ones included."""
    found = [
        ((node.end_lineno or node.lineno) - node.lineno + 1, f"{path.relative_to(ROOT)}:{name}")
        for path in app_files()
        for node, name in _walk(ast.parse(path.read_text()), "")
        if isinstance(node, kind) and isinstance(node, ast.stmt)
    ]
    return sorted(found, reverse=True)


def functions() -> list[tuple[int, str]]:
    return definitions((ast.FunctionDef, ast.AsyncFunctionDef))


def classes() -> list[tuple[int, str]]:
    return definitions(ast.ClassDef)


def modules() -> list[tuple[int, str]]:
    return sorted(
        ((len(path.read_text().splitlines()), str(path.relative_to(ROOT))) for path in app_files()),
        reverse=True,
    )


def main(count: int = 15) -> None:
    for title, rows in (("modules", modules()), ("functions", functions()), ("classes", classes())):
        print(f"| {title} | lines |\n|---|---:|")
        for lines, name in rows[:count]:
            print(f"| `{name}` | {lines} |")
        print()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 15)
