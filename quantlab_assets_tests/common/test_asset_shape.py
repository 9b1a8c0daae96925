"""The Dagster layer stays thin: every asset or check body reads, calls a core function, writes once."""

import ast
from pathlib import Path

import quantlab_assets

PACKAGE = Path(quantlab_assets.__file__).parent
MAX_BODY_LINES = 30
_DECORATORS = ("dg.asset", "dg.multi_asset", "dg.asset_check", "dg.multi_asset_check")


def _bodies():
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.FunctionDef):
                continue
            if not any(ast.unparse(d).startswith(_DECORATORS) for d in node.decorator_list):
                continue
            body = node.body
            if isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                body = body[1:]  # the docstring is the asset's description, not its logic
            yield f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name}", body[-1].end_lineno - body[0].lineno + 1


def test_the_scan_finds_the_assets():
    names = [name for name, _ in _bodies()]
    assert any(name.endswith(" ohlcv") for name in names)
    assert any(name.endswith(" features") for name in names)
    assert len(names) >= 8


def test_no_asset_body_is_longer_than_30_lines():
    long = {name: n for name, n in _bodies() if n > MAX_BODY_LINES}
    assert long == {}, f"asset bodies over {MAX_BODY_LINES} lines (move the work into the team's core): {long}"
