"""Every shell command the README shows, and every command the console prints, works when
pasted into a shell in the checkout (a temporary SEI_VAR_DIR keeps it off the developer's)."""

from __future__ import annotations

import html
import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()

# Shown, but not run here, and why.
NOT_RUN = {
    "make run": "a server that runs until Ctrl-C (started by hand and in every clean-clone trial)",
    "make run-with-sandbox": "the same server, trusting the sandbox",
    "make sandbox": "servers that run until Ctrl-C",
    "make test": "this very suite",
    "docker compose": "no Docker engine runs on these machines",
    "DATABASE_URL=": "a server or this suite again, on PostgreSQL",
    "curl ": "switches of a running make sandbox (test_graph_sandbox runs them on its own)",
}


def readme_commands() -> list[str]:
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", README, flags=re.DOTALL):
        for line in block.splitlines():
            command = re.sub(r"\s+#.*$", "", line).strip()
            if command:
                commands.append(command)
    # Commands written in the text, e.g. `make manage ARGS="rotate_encryption_keys"`.
    commands += re.findall(r'`(make manage ARGS="[^"`]+")`', README)
    return commands


HINT = re.compile(r'make manage ARGS="[^"]+"')


def page_hints() -> list[str]:
    """Commands the console's pages print (the lock-out page)."""
    text = html.unescape((ROOT / "templates/registration/locked_out.html").read_text())
    return HINT.findall(text)


def runnable(command: str) -> bool:
    return not any(command.startswith(prefix) for prefix in NOT_RUN)


def run(command: str, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", command],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@pytest.fixture(scope="module")
def shell_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A developer's shell: no test settings, a fresh var folder, migrated, with an admin."""
    var = tmp_path_factory.mktemp("readme-var")
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", str(var)),
        "SEI_VAR_DIR": str(var),
    }
    for setup in ('make manage ARGS="migrate --noinput"', 'make manage ARGS="ensure_admin"'):
        done = run(setup, env)
        assert done.returncode == 0, done.stderr
    return env


def test_the_readme_and_the_console_show_commands() -> None:
    assert len([c for c in readme_commands() if runnable(c)]) >= 6
    assert page_hints()


def test_what_make_run_prints_works_when_pasted(shell_env: dict[str, str]) -> None:
    # make run's start-up lines come from ensure_admin: the first start, and every one after.
    printed = run('make manage ARGS="ensure_admin"', shell_env).stdout
    hints = HINT.findall(printed)
    assert hints, printed
    for command in hints:
        done = run(command, shell_env, stdin="a long new passphrase 77\n" * 2)
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"


@pytest.mark.parametrize("command", sorted(set(readme_commands() + page_hints())))
def test_a_shown_command_works_as_typed(command: str, shell_env: dict[str, str]) -> None:
    if not runnable(command):
        reason = next(why for prefix, why in NOT_RUN.items() if command.startswith(prefix))
        pytest.skip(f"not run here: {reason}")
    command = command.replace("NAME", "admin")  # the lock-out page's placeholder
    # changepassword asks twice, as at a terminal.
    done = run(command, shell_env, stdin="a long new passphrase 77\n" * 2)
    assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
