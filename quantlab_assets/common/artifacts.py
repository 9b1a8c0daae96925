"""Per-run artifact folders, as in the seed: ``artifacts/runs/<run_id>/``."""

from __future__ import annotations

import os
import re
from pathlib import Path

from quantlab_assets.common.text import printable

_RUN_ID = re.compile(r"^[A-Za-z0-9_.-]+$")


def run_dir(root: str | Path, run_id: str) -> Path:
    if not _RUN_ID.match(run_id):
        raise ValueError(f"run id {run_id!r} is not a safe folder name")
    path = Path(root) / "runs" / run_id
    (path / "reports").mkdir(parents=True, exist_ok=True)
    return path


def unwritable(folder: str | Path) -> str | None:
    """Why files cannot be written under ``folder`` (None: they can). A missing folder is fine if
    its nearest existing parent is writable (it will be created)."""
    folder = Path(folder)
    existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if existing is None:
        return None
    if not existing.is_dir():
        return f"{existing} is a file, not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not writable"
    return None


def write_report(root: str | Path, run_id: str, name: str, text: str) -> Path:
    """Write ``reports/<name>`` for a run; returns the path."""
    if "/" in name or name.startswith("."):
        raise ValueError(f"report name {name!r} must be a plain file name")
    path = run_dir(root, run_id) / "reports" / name
    path.write_text(text, encoding="utf-8")
    return path


def write_section(root: str | Path, run_id: str, name: str, section: str, text: str, title: str | None = None) -> Path:
    """Put ``text`` as section ``section`` of ``reports/<name>``, replacing an earlier version of
    that section: several assets of one run (one per strategy) share one report."""
    path = run_dir(root, run_id) / "reports" / name
    begin, end = f"<!-- section:{section} -->", f"<!-- /section:{section} -->"
    current = path.read_text(encoding="utf-8") if path.exists() else (f"# {title}\n\n" if title else "")
    block = f"{begin}\n{text.rstrip()}\n{end}\n"
    if begin in current and end in current:
        head, rest = current.split(begin, 1)
        current = head + block + rest.split(end, 1)[1].lstrip("\n")
    else:
        current += ("\n" if current and not current.endswith("\n\n") else "") + block
    path.write_text(current, encoding="utf-8")
    return path


def markdown_table(frame, max_rows: int = 20) -> str:
    """A small markdown table without the optional 'tabulate' dependency."""
    if frame is None or len(frame) == 0:
        return "_(none)_"
    shown = frame.head(max_rows)
    cols = [str(c) for c in shown.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in shown.itertuples(index=False):
        lines.append("| " + " | ".join(_fmt(v) for v in row) + " |")
    if len(frame) > max_rows:
        lines.append(f"\n_… {len(frame) - max_rows} more rows_")
    return "\n".join(lines)


def _fmt(value) -> str:
    if hasattr(value, "strftime"):
        try:
            return value.strftime("%Y-%m-%d")
        except ValueError:
            return str(value)
    if isinstance(value, float):
        return f"{value:.6g}"
    return printable(value).replace("|", "\\|")  # one line per row: control characters escaped
