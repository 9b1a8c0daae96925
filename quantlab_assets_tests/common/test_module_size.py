"""No module of ``quantlab_assets`` grows past 500 lines unless its docstring says why it is better
whole (a sentence starting "Kept whole:"); docs/contributing.md#module-size-one-concern-per-module."""

from __future__ import annotations

import ast
from pathlib import Path

import quantlab_assets

PACKAGE = Path(quantlab_assets.__file__).resolve().parent
MAX_LINES = 500
REASON = "Kept whole:"


def needs_a_split(source: str) -> bool:
    """Longer than ``MAX_LINES`` and no ``REASON`` in the module docstring."""
    return len(source.splitlines()) > MAX_LINES and REASON not in (ast.get_docstring(ast.parse(source)) or "")


def test_no_module_past_the_size_without_a_reason_in_its_docstring():
    too_long = [
        f"{path.relative_to(PACKAGE)} ({len(path.read_text(encoding='utf-8').splitlines())} lines)"
        for path in sorted(PACKAGE.rglob("*.py"))
        if needs_a_split(path.read_text(encoding="utf-8"))
    ]
    assert not too_long, f"split by concern, or say why not in the docstring ({REASON!r}): {too_long}"


def test_control_a_long_module_needs_a_split_unless_its_docstring_says_why():
    body = "\n".join(f"x{i} = {i}" for i in range(MAX_LINES))
    assert needs_a_split(f'"""A module."""\n{body}\n')
    assert not needs_a_split(f'"""A module.\n\n{REASON} one compiled loop."""\n{body}\n')
    assert not needs_a_split(f'"""A module."""\n{body[: body.rindex(chr(10))]}\n')  # exactly MAX_LINES lines
    assert needs_a_split(f'x = 1\n"""{REASON} after code: no docstring."""\n{body}\n')
