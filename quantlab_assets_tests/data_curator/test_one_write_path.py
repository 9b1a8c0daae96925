"""One write path into ``ohlcv``: ``core/step.audit_and_publish_ohlcv`` (stage, audit, publish).

No other production code writes the contract around its audit, not even a benchmark helper:
every module of the package is read (so new code is covered) for a call that hands the
``OHLCV`` schema to a writer, and for SQL that inserts into, deletes from, updates, truncates,
drops, alters or copies into ``ohlcv``. Tests that must store rows the audit would refuse (to see
the stored gate catch them) use ``quantlab_assets_tests.support.unaudited``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import quantlab_assets
from quantlab_assets.data_curator.core import store

PACKAGE_DIR = Path(quantlab_assets.__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent
THE_WRITE_PATH = (PACKAGE_DIR / "data_curator" / "core" / "step.py", "audit_and_publish_ohlcv")
# DuckDB's own upsert, timed as the ingest bench's baseline in a file of its own (never a warehouse).
BASELINE = (PROJECT_ROOT / "bench" / "bench_ingest.py", "baseline_upsert")
WRITER = re.compile(r"replace|append|write|insert|delete|publish|upsert|merge|copy", re.IGNORECASE)
SQL_WRITE = re.compile(
    r"\b(?:INSERT\s+(?:OR\s+\w+\s+)?INTO|DELETE\s+FROM|UPDATE|TRUNCATE(?:\s+TABLE)?|DROP\s+TABLE(?:\s+IF\s+EXISTS)?"
    r"|ALTER\s+TABLE|COPY|CREATE\s+(?:OR\s+REPLACE\s+)?TABLE(?:\s+IF\s+NOT\s+EXISTS)?)\s+"
    r"(?:\"?\w+\"?\.)?\"?(?:ohlcv|\{OHLCV\.name\})\"?(?![\w.])",
    re.IGNORECASE,
)


def _callee(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def _names_ohlcv(node: ast.expr) -> bool:
    """The schema (``OHLCV``, ``x.OHLCV``) or the table's name as a string (``con.append("ohlcv", df)``)."""
    return (
        (isinstance(node, ast.Name) and node.id == "OHLCV")
        or (isinstance(node, ast.Attribute) and node.attr == "OHLCV")
        or (isinstance(node, ast.Constant) and node.value == "ohlcv")
    )


def ohlcv_writes(source: str) -> list[tuple[int, str]]:
    """(line, enclosing function) of every write into ``ohlcv`` in ``source``."""
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST, function: str) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            function = node.name
        if isinstance(node, ast.Call) and WRITER.search(_callee(node)):
            args = [*node.args, *(k.value for k in node.keywords)]
            if any(_names_ohlcv(a) for a in args):
                found.append((node.lineno, function))
        if isinstance(node, ast.JoinedStr | ast.Constant) and not isinstance(getattr(node, "value", ""), bytes):
            text = ast.unparse(node) if isinstance(node, ast.JoinedStr) else str(node.value)
            if SQL_WRITE.search(text):
                found.append((node.lineno, function))
                return  # a JoinedStr's parts are not looked at twice
        for child in ast.iter_child_nodes(node):
            visit(child, function)

    visit(ast.parse(source), "<module>")
    return found


def test_only_the_audited_publish_writes_ohlcv():
    """The package, the benchmarks and the scripts: a benchmark times the production path."""
    writes = {}
    files = [
        *PACKAGE_DIR.rglob("*.py"),
        *(PROJECT_ROOT / "bench").rglob("*.py"),
        *(PROJECT_ROOT / "scripts").rglob("*.py"),
    ]
    for path in sorted(files):
        for line, function in ohlcv_writes(path.read_text()):
            writes.setdefault((path, function), []).append(line)
    assert sorted(writes) == sorted([THE_WRITE_PATH, BASELINE]), (
        "ohlcv is written only by data_curator.core.step.audit_and_publish_ohlcv; also written at "
        + "; ".join(f"{p.relative_to(PROJECT_ROOT)}:{lines} ({f})" for (p, f), lines in writes.items())
    )


def test_the_old_unaudited_writer_is_gone():
    assert not hasattr(store, "write_ohlcv")


def test_the_probe_finds_each_way_to_write_ohlcv():
    cases = {
        "replace_slice(con, OHLCV, rows, a, b)": 1,
        "warehouse.append_rows_in_transaction(con, schema.OHLCV, rows)": 1,
        "replace_table_in_transaction(con, schema=OHLCV, frame=f)": 1,
        "con.execute('INSERT INTO ohlcv SELECT * FROM x')": 1,
        "con.execute('insert or replace into \"ohlcv\" VALUES (?)', p)": 1,
        "con.execute(f'DELETE FROM \"{OHLCV.name}\" WHERE date = ?', [d])": 1,
        "con.execute('UPDATE ohlcv SET close = 1')": 1,
        "con.execute('DROP TABLE IF EXISTS ohlcv')": 1,
        "con.execute('COPY ohlcv FROM \\'x.csv\\'')": 1,
        # DuckDB's own write API, a schema-qualified name, a table created from a query
        "con.append('ohlcv', frame)": 1,
        "con.sql('SELECT 1').insert_into('ohlcv')": 1,
        "con.execute('INSERT INTO main.ohlcv SELECT * FROM x')": 1,
        "con.execute('CREATE TABLE ohlcv AS SELECT * FROM x')": 1,
        "con.execute('create table if not exists \"ohlcv\" as select 1')": 1,
        # reads, other tables and the schema's own declaration are not writes
        "read_slice(con, OHLCV, a, b)": 0,
        "ensure_table(con, OHLCV)": 0,
        "conform(rows, OHLCV)": 0,
        "con.execute('SELECT * FROM ohlcv')": 0,
        "con.execute('INSERT INTO ohlcv_rejects SELECT 1')": 0,
        "con.execute('DELETE FROM ohlcv_staged')": 0,
        "replace_slice(con, FEATURES, rows, a, b)": 0,
        "con.append('ohlcv_rejects', frame)": 0,
        "read_slice(con, 'ohlcv', a, b)": 0,
    }
    for source, expected in cases.items():
        assert len(ohlcv_writes(source)) == expected, source
    assert ohlcv_writes("def sneak(con):\n    con.execute('DELETE FROM ohlcv')\n") == [(2, "sneak")]
