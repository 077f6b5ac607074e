"""No function over 60 lines and no class over 250 in the console's code, unless it is data:
a long coordinator hides its steps, a long class more than one job."""

from __future__ import annotations

from .sizes import classes, functions

FUNCTION_LINES = 60
CLASS_LINES = 250
# Data, not logic: a PowerShell script's text, line by line.
DATA = {
    "smtp_settings/assistant/script.py:exchange_script",
    "smtp_settings/assistant/graph_script.py:graph_scope_script",
}


def test_no_function_is_over_sixty_lines() -> None:
    long = [(lines, name) for lines, name in functions() if lines > FUNCTION_LINES]
    assert [entry for entry in long if entry[1] not in DATA] == []
    assert functions()[0][0] > 30  # the walk found the code


def test_no_class_is_over_two_hundred_fifty_lines() -> None:
    assert [entry for entry in classes() if entry[0] > CLASS_LINES] == []
    assert classes()[0][0] > 100
