"""The configuration page's variable tables, generated from ``settings.VARIABLES``.

docs/configuration.md is written by hand except the block between ``BEGIN`` and ``END``, which is
this module's output: the variables are declared once (``common/settings.py``) and the page is
never edited to match. ``python -m quantlab_assets.common.settings_doc`` rewrites the block;
``--check`` exits 1 naming the file when it is stale (a test runs the same comparison).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path

from quantlab_assets.common import settings

PAGE = settings.PROJECT_ROOT / "docs" / "configuration.md"
BEGIN = "<!-- BEGIN GENERATED from quantlab_assets/common/settings.py by common/settings_doc.py: do not edit -->"
END = "<!-- END GENERATED -->"
HEADER = (
    "| variable | default | meaning | read | resource field that overrides it |",
    "|---|---|---|---|---|",
)


def _cell(text: str) -> str:
    """A table cell: a pipe would split the cell, a newline the row."""
    return " ".join(text.split()).replace("|", "\\|")


def _default(text: str) -> str:
    """A plain value (a path, a number, a URL) in code style; a phrase or "–" as written."""
    if text == "–" or "`" in text or " " in text:
        return text
    return f"`{text}`"


def _rows(variables: Iterable[settings.Variable]) -> list[str]:
    return [
        f"| `{v.name}` | {_cell(_default(v.default))} | {_cell(v.meaning)} | {_cell(v.read)} | {_cell(v.field)} |"
        for v in variables
    ]


def generated_block() -> str:
    """The two tables (Quant Lab's variables, then Dagster's own), between the markers."""
    lines = [BEGIN, "", *HEADER, *_rows(settings.VARIABLES), ""]
    lines += ["Dagster's own variables (Dagster reads them):", "", *HEADER, *_rows(settings.DAGSTER_VARIABLES)]
    return "\n".join([*lines, "", END])


def render(page_text: str) -> str:
    """``page_text`` with its generated block replaced by the current one."""
    start, end = page_text.find(BEGIN), page_text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"{PAGE}: the markers {BEGIN!r} and {END!r} are missing or out of order; put them back")
    return page_text[:start] + generated_block() + page_text[end + len(END) :]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Regenerate docs/configuration.md's tables from settings.VARIABLES.")
    parser.add_argument("--check", action="store_true", help="exit 1 if the page is stale instead of writing it")
    parser.add_argument("--page", type=Path, default=PAGE)
    args = parser.parse_args(argv)
    try:
        current = args.page.read_text(encoding="utf-8")
        fresh = render(current)
    except (OSError, ValueError) as exc:
        print(f"settings_doc: {exc}", file=sys.stderr)
        return 2
    if fresh == current:
        return 0
    if args.check:
        print(
            f"{args.page}: stale; run `python -m quantlab_assets.common.settings_doc` to regenerate it",
            file=sys.stderr,
        )
        return 1
    args.page.write_text(fresh, encoding="utf-8")
    print(f"settings_doc: rewrote {args.page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
