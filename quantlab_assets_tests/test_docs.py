"""The README stays an overview and an index; the docs it points to exist and are current.

The configuration page's tables are generated from ``settings.VARIABLES``; every relative link in
the README, docs/ and bench/results.md names a file (and heading) that exists; every page in docs/
is reachable from the README's index; the facts the README used to hold are still reachable.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

from quantlab_assets.common import settings, settings_doc

ROOT = settings.PROJECT_ROOT
README = ROOT / "README.md"
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
FENCE = re.compile(r"^\s*(```|~~~)")


def pages() -> list[Path]:
    """The markdown pages that make up the documentation."""
    return [README, *sorted((ROOT / "docs").glob("*.md")), ROOT / "bench" / "results.md"]


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading anchors on its text
    text = text.lower().replace("`", "")
    kept = "".join(ch for ch in text if ch in "-_ " or unicodedata.category(ch)[0] in "LN")
    return kept.replace(" ", "-")


def _outside_fences(text: str) -> list[str]:
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in _outside_fences(page.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if not match:
            continue
        slug = _slug(match.group(2))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        out.add(slug if count == 0 else f"{slug}-{count}")
    return out


def links(page: Path) -> list[tuple[int, str]]:
    """(line number, target) of every relative link outside code blocks."""
    out, fenced = [], False
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), start=1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if fenced:
            continue
        for target in LINK.findall(line):
            if not re.match(r"[a-z]+:", target):  # http:, https:, mailto:
                out.append((number, target))
    return out


def broken_links(page: Path, root: Path = ROOT) -> list[str]:
    problems = []
    for number, target in links(page):
        path_part, _, anchor = target.partition("#")
        dest = (page.parent / path_part).resolve() if path_part else page
        where = f"{page.relative_to(root)}:{number}: link {target!r}"
        if not dest.exists():
            problems.append(f"{where}: no file {dest}")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            problems.append(f"{where}: no heading with anchor #{anchor} in {dest.relative_to(root)}")
    return problems


def reachable_from_readme() -> set[Path]:
    seen, todo = {README.resolve()}, [README.resolve()]
    while todo:
        page = todo.pop()
        for _, target in links(page):
            path_part = target.partition("#")[0]
            dest = (page.parent / path_part).resolve() if path_part else page
            if dest.suffix == ".md" and dest.exists() and dest not in seen:
                seen.add(dest)
                todo.append(dest)
    return seen


def test_configuration_page_is_generated_from_settings():
    page = settings_doc.PAGE.read_text(encoding="utf-8")
    assert settings_doc.render(page) == page, (
        "docs/configuration.md is stale: run `python -m quantlab_assets.common.settings_doc` and commit the page"
    )
    for variable in (*settings.VARIABLES, *settings.DAGSTER_VARIABLES):
        assert f"| `{variable.name}` |" in page


def test_the_generator_notices_a_stale_page_and_refuses_missing_markers(tmp_path):
    page = tmp_path / "configuration.md"
    stale_row = "| `OLD_VARIABLE` | – | gone | run | – |"
    page.write_text(f"intro\n\n{settings_doc.BEGIN}\n{stale_row}\n{settings_doc.END}\nend\n")
    assert settings_doc.main(["--check", "--page", str(page)]) == 1
    assert "OLD_VARIABLE" in page.read_text()  # --check never writes
    assert settings_doc.main(["--page", str(page)]) == 0
    text = page.read_text()
    assert "OLD_VARIABLE" not in text and text.startswith("intro\n") and text.endswith("end\n")
    assert f"| `{settings.DB}` | `{settings.DEFAULT_DB}` |" in text
    assert settings_doc.main(["--check", "--page", str(page)]) == 0
    page.write_text("no markers here\n")
    assert settings_doc.main(["--check", "--page", str(page)]) == 2


def test_a_cell_cannot_break_the_table():
    row = settings_doc._rows([settings.Variable("X", "a|b", "two\nlines")])[0]
    assert row == "| `X` | `a\\|b` | two lines | run | – |"


def test_readme_is_an_overview_with_the_two_commands():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 200, "the README is an overview: move detail into a docs/ page and link it"
    lines = text.splitlines()
    assert any(line.startswith("bash scripts/demo.sh ") for line in lines)
    assert any(line.startswith("bash scripts/test.sh ") for line in lines)
    assert "bash scripts/test.sh" in (ROOT / ".ci" / "run").read_text()
    assert re.findall(r"\b[Ii]ssues? \d+", text) == [], "issue numbers are history: keep them in git, not the README"


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    assert broken_links(page) == []


def test_the_link_checker_sees_a_broken_link_and_anchor(tmp_path):
    (tmp_path / "a.md").write_text("# Top `x`: here\n\n[ok](b.md#the-part) [bad](c.md) [anchor](b.md#nope)\n")
    (tmp_path / "b.md").write_text("```\n# not a heading\n```\n## The part\n")
    problems = broken_links(tmp_path / "a.md", root=tmp_path)
    assert len(problems) == 2 and "c.md" in problems[0] and "#nope" in problems[1]
    assert anchors(tmp_path / "a.md") == {"top-x-here"}
    assert anchors(tmp_path / "b.md") == {"the-part"}


def test_every_docs_page_is_reachable_from_the_readme():
    reachable = reachable_from_readme()
    orphans = [str(p.relative_to(ROOT)) for p in pages() if p.resolve() not in reachable]
    assert orphans == [], f"link these from the README's 'Where to read next' index: {orphans}"


# Facts the 836-line README held before it was split: each must still be found in a page reachable
# from the README (a sample across every former section, not the whole text).
FORMER_README_FACTS = (
    "SELECT * FROM audit_rejects WHERE run_id = ?",
    "daily_chain_after_close",
    "labels_refresh_after_close",
    "quantlab rerun 791a89a8",
    "__ASSET_JOB",
    "max_resume_run_attempts: 0",
    "QuantLabRunLauncher",
    "join the community",
    "`2024-13-45`",
    "walkthrough.md",
    "TIME_SERIES_DAILY_ADJUSTED",
    "duplicate key 'a' at line 3 (first at line 1)",
    "ohlcv_staged",
    "ohlcv_ingest_log",
    "Saturday is not a trading session",
    "ingest_budget_s",
    "48 of 50 symbols throttled",
    "int64 fixed point in log space",
    "WILDER_TOL",
    "KINDS_VERSION",
    "min(0, E_open × (1 − Σw))",
    "participation cap (rest dropped)",
    "turnover 62.50% of this rebalance exceeds 50.00%",
    "Feedback without a cycle",
    "research.decisions_of",
    "deflated Sharpe ratio",
    "Risk of Ruin",
    "`lookback_sessions` (2520)",
    "QuantLabSqliteStorage",
    "in_process_executor",
    "dagster-duckdb-pandas",
    "alembic",
    "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS",
    "1 min 45 s",
    "1,214 passed",
    "23 s after",
    "2.7e-15",
    "129–144 s",
    "bench/compare_warehouses.py",
)


def test_what_the_readme_said_is_still_reachable_from_it():
    text = "\n".join(page.read_text(encoding="utf-8") for page in reachable_from_readme())
    missing = [fact for fact in FORMER_README_FACTS if fact not in text]
    assert missing == []
