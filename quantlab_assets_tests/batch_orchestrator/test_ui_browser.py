"""End to end through the UI: the real ``dagster-webserver`` (and ``dagster-daemon``) on 127.0.0.1,
a materialization launched through its GraphQL API, then the global asset lineage page rendered
by headless Chromium: the chain's assets are on the graph and ``ohlcv`` points at our run.

Chromium is driven as a plain subprocess (``--dump-dom`` / ``--screenshot`` with a virtual-time
budget, which waits for the page's network fetches), so no Python browser library is needed.
Install the browser with ``bash scripts/install_browser.sh``; without ``/usr/bin/chromium`` the
test is skipped.

The runs go through the repository's own ``dagster.yaml`` (QueuedRunCoordinator), so the daemon
runs too: a launched run is dequeued and started exactly as after a click in the UI.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import dagster as dg
import pytest

from quantlab_assets_tests.conftest import PROJECT_ROOT

CHROMIUM = Path("/usr/bin/chromium")
PARTITION = "2024-04-02"
# The chain the page must show, whatever else the definitions grow: the README's lineage.
CORE_ASSETS = [
    "ohlcv",
    "features",
    "labels",
    "momentum_topk/momentum_topk_targets",
    "momentum_topk/momentum_topk_backtest",
    "momentum_topk/momentum_topk_backtest_kpis",
]
# The graph opens zoomed to fit the window, and draws full asset nodes (name, checks, links)
# from zoom 0.6 up, bare names below: the window is sized from the graph for zoom 0.75.
TARGET_ZOOM = 0.75
PROBE_WINDOW = (1200, 800)
MIN_WINDOW = (1600, 1000)
CHROME_PX = (600, 160)  # navigation + asset tree beside the graph, header + toolbar above it
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--virtual-time-budget=20000",
    # Only 127.0.0.1 resolves: the page must not need (or try) anything from the internet.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"{CHROMIUM} not found: run `bash scripts/install_browser.sh` (Debian's chromium) for the UI test",
)


# ----------------------------------------------------------------------------- processes


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(cmd: list[str], log: Path) -> subprocess.Popen:
    """A child in its own process group (it spawns code servers and run workers)."""
    with open(log, "wb") as out:
        return subprocess.Popen(
            cmd,
            cwd=PROJECT_ROOT,
            env=os.environ.copy(),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def _stop(proc: subprocess.Popen, grace: float = 15.0) -> None:
    """SIGTERM the whole group, SIGKILL what is left after ``grace`` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            continue
        # The leader is gone; give the rest of its group the same deadline.
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)


def _tail(log: Path, lines: int = 40) -> str:
    text = log.read_text(errors="replace") if log.exists() else ""
    return f"--- {log.name} (last {lines} lines) ---\n" + "\n".join(text.splitlines()[-lines:])


class Server:
    """``dagster-webserver`` + ``dagster-daemon`` for the workspace, on a free local port."""

    def __init__(self, logdir: Path):
        self.logdir = logdir
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.procs: dict[str, subprocess.Popen] = {}
        self.location = ""

    def logs(self) -> str:
        return "\n".join(_tail(self.logdir / f"{name}.log") for name in self.procs)

    def start(self) -> str:
        """Start both; return the code location's name once the webserver has loaded it."""
        # Create the SQLite storages first, in this process: processes that find a fresh
        # DAGSTER_HOME at the same moment race on the schema ("more than one head present").
        instance = dg.DagsterInstance.get()
        try:
            instance.get_runs(limit=1)
        finally:
            instance.dispose()
        bindir = Path(sys.executable).parent
        workspace = str(PROJECT_ROOT / "workspace.yaml")
        self.procs["webserver"] = _start(
            [str(bindir / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(self.port), "-w", workspace],
            self.logdir / "webserver.log",
        )
        location = self.wait_ready()
        # The daemon dequeues the runs the webserver launches (QueuedRunCoordinator).
        self.procs["daemon"] = _start(
            [str(bindir / "dagster-daemon"), "run", "-w", workspace], self.logdir / "daemon.log"
        )
        return location

    def stop(self) -> None:
        for proc in self.procs.values():
            _stop(proc)

    def _check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                pytest.fail(f"{name} exited with {proc.returncode}\n{self.logs()}")

    def wait_ready(self, timeout: float = 60.0) -> str:
        """Wait for ``/server_info`` and a loaded code location; return the location's name."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                with urllib.request.urlopen(f"{self.url}/server_info", timeout=2) as resp:
                    info = json.load(resp)
                break
            except (urllib.error.URLError, ConnectionError, OSError, ValueError):
                time.sleep(0.3)
        else:
            pytest.fail(f"webserver did not answer /server_info within {timeout:.0f}s\n{self.logs()}")
        assert info.get("dagster_webserver_version"), info
        query = """{ workspaceOrError { __typename ... on Workspace { locationEntries { name loadStatus
                     locationOrLoadError { __typename ... on RepositoryLocation { name repositories { name } }
                                           ... on PythonError { message } } } } } }"""
        while time.monotonic() < deadline:
            self._check_alive()
            entries = self.graphql(query)["workspaceOrError"]["locationEntries"]
            if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                (entry,) = entries
                location = entry["locationOrLoadError"]
                assert location["__typename"] == "RepositoryLocation", location
                assert [r["name"] for r in location["repositories"]] == ["__repository__"], location
                return location["name"]
            time.sleep(0.3)
        pytest.fail(f"code location not loaded within {timeout:.0f}s\n{self.logs()}")

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        req = urllib.request.Request(f"{self.url}/graphql", data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            answer = json.load(resp)
        assert not answer.get("errors"), answer["errors"]
        return answer["data"]


@pytest.fixture
def dagster_server(lab_env, dagster_storage, small_universe, tmp_path):
    server = Server(tmp_path)
    try:
        server.location = server.start()
        yield server
    finally:
        server.stop()


# ----------------------------------------------------------------------------- GraphQL

LAUNCH_RUN = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId status } }
    ... on PythonError { message stack }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on PipelineNotFoundError { message }
  }
}"""

RUN_STATUS = """
query Run($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { status parentRunId rootRunId stepStats { stepKey status } }
    ... on PythonError { message }
  }
}"""


def _launch(server: Server, location: str, assets: list[str], partition: str) -> str:
    """Launch a materialization of ``assets`` for ``partition`` as the UI does; the run id."""
    params = {
        "selector": {
            "repositoryLocationName": location,
            "repositoryName": "__repository__",
            "jobName": "__ASSET_JOB",
            "assetSelection": [{"path": a.split("/")} for a in assets],
        },
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": partition}]},
    }
    launched = server.graphql(LAUNCH_RUN, {"params": params})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    return launched["run"]["runId"]


def _wait(server: Server, run_id: str, timeout: float = 90.0) -> dict:
    """Poll until the run ends; its status, lineage and step statuses."""
    deadline = time.monotonic() + timeout
    status = None
    while time.monotonic() < deadline:
        run = server.graphql(RUN_STATUS, {"runId": run_id})["runOrError"]
        assert run["__typename"] == "Run", run
        status = run["status"]
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            return {"run_id": run_id, **run}
        time.sleep(0.5)
    pytest.fail(f"run {run_id} not finished after {timeout:.0f}s (status {status})\n{server.logs()}")


def _materialize(server: Server, location: str, asset: str, partition: str) -> dict:
    run = _wait(server, _launch(server, location, [asset], partition))
    assert run["status"] == "SUCCESS", f"{run}\n{server.logs()}"
    return run


# ----------------------------------------------------------------------------- browser


def _chromium(url: str, window: tuple[int, int], *, screenshot: Path | None = None, timeout: float = 90) -> str:
    """One headless Chromium load of ``url`` in a fresh profile: the DOM once the virtual-time
    budget has run out (it does not run while fetches are pending), and the same page's
    screenshot if asked."""
    with tempfile.TemporaryDirectory(prefix="quantlab-chromium-") as profile:
        shot = [f"--screenshot={screenshot}"] if screenshot else []
        cmd = [
            str(CHROMIUM),
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--window-size={window[0]},{window[1]}",
            "--dump-dom",
            *shot,
            url,
        ]
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, start_new_session=True
        )
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _stop(proc, grace=5)
            pytest.fail(f"chromium did not finish {url} within {timeout}s")
        finally:
            _stop(proc, grace=5)  # helper processes it may leave behind
    assert proc.returncode == 0, f"chromium exited {proc.returncode}: {err.decode(errors='replace')[-2000:]}"
    return out.decode("utf-8", errors="replace")


class _GraphNodes(HTMLParser):
    """Asset nodes of the lineage SVG: each top-level ``<foreignObject>``'s texts and links."""

    def __init__(self):
        super().__init__()
        self.depth = 0
        self.nodes: list[dict] = []
        self.graph_size: tuple[float, float] | None = None
        self.minimal = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        classes = attrs.get("class") or ""
        if tag == "svg" and "svgContainer" in classes:
            self.graph_size = (float(attrs["width"]), float(attrs["height"]))
        if "minimalName" in classes:
            self.minimal = True
        if tag == "foreignobject":
            self.depth += 1
            if self.depth == 1:
                self.nodes.append({"texts": [], "hrefs": []})
        elif self.depth and tag == "a" and attrs.get("href"):
            self.nodes[-1]["hrefs"].append(attrs["href"])

    def handle_endtag(self, tag):
        if tag == "foreignobject":
            self.depth -= 1

    def handle_data(self, data):
        if self.depth and data.strip():
            self.nodes[-1]["texts"].append(data.strip())


def _parse(dom: str) -> _GraphNodes:
    parser = _GraphNodes()
    parser.feed(dom)
    return parser


def _shows_name(label: str, name: str) -> bool:
    """``label`` is ``name``, or Dagster's middle truncation of it (names over 31 characters)."""
    head, cut, tail = label.partition("…")
    return label == name or bool(cut and len(head) >= 8 and name.startswith(head) and name.endswith(tail))


def _node_for(graph: _GraphNodes, asset: str) -> dict | None:
    """The full asset node of ``asset``: it shows the key's last part and links to its page."""
    name, page = asset.split("/")[-1], f"/assets/{asset}?"
    for node in graph.nodes:
        if node["texts"][:1] and _shows_name(node["texts"][0], name) and any(h.startswith(page) for h in node["hrefs"]):
            return node
    return None


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


# ----------------------------------------------------------------------------- the test


def test_asset_graph_in_browser_after_graphql_materialization(dagster_server, lab_env, tmp_path):
    from quantlab_assets.definitions import defs

    asset_graph = defs.resolve_asset_graph()
    chain = sorted(k.to_user_string() for k in dg.AssetSelection.assets("ohlcv").downstream().resolve(asset_graph))
    assert set(CORE_ASSETS) <= set(chain), chain
    groups = sorted({asset_graph.get(key).group_name for key in asset_graph.get_all_asset_keys()})

    run = _materialize(dagster_server, dagster_server.location, "ohlcv", PARTITION)
    assert {s["stepKey"]: s["status"] for s in run["stepStats"]}.get("ohlcv") == "SUCCESS", run

    # The first-visit "join the community" dialog would cover the graph: dismiss it the way
    # its Skip button does (a marker file in this test's DAGSTER_HOME).
    assert dagster_server.graphql("mutation { setNuxSeen }")["setNuxSeen"] is True
    assert dagster_server.graphql("{ shouldShowNux }")["shouldShowNux"] is False

    # Global asset lineage with every group expanded (the page collapses groups by default).
    expanded = ",".join(f"global@global:{group}" for group in groups)
    url = f"{dagster_server.url}/asset-groups?expanded={expanded}"
    probe = _parse(_chromium(url, PROBE_WINDOW))
    assert probe.graph_size, f"no asset graph on {url}"
    window = tuple(
        max(low, int(size * TARGET_ZOOM) + extra) for low, size, extra in zip(MIN_WINDOW, probe.graph_size, CHROME_PX)
    )
    screenshot = tmp_path / "asset_graph.png"
    graph = _parse(_chromium(url, window, screenshot=screenshot))
    # Kept with the run artifacts before anything is asserted on it, so a failure has a picture.
    kept = lab_env["QUANTLAB_ARTIFACTS"] / "ui" / "asset_graph.png"
    kept.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(screenshot, kept)
    assert graph.graph_size, f"no asset graph on {url}"
    assert not graph.minimal, f"graph {graph.graph_size} drawn at low zoom (bare names) in a {window} window"

    texts = [t for node in graph.nodes for t in node["texts"]]
    missing_groups = [g for g in groups if g not in texts]
    assert not missing_groups, f"groups not on the page: {missing_groups}"
    missing = [asset for asset in chain if _node_for(graph, asset) is None]
    drawn = [(n["texts"][:1], n["hrefs"][:1]) for n in graph.nodes]
    assert not missing, f"assets not drawn on the graph: {missing}; nodes drawn: {drawn}"
    # ohlcv's node shows the materialization we just launched (its latest event links to the run).
    ohlcv = _node_for(graph, "ohlcv")
    assert any(h.startswith(f"/runs/{run['run_id']}") for h in ohlcv["hrefs"]), ohlcv
    assert re.search(r"\b([1-9]\d*) / \1 Passed\b", " ".join(ohlcv["texts"])), ohlcv

    assert screenshot.stat().st_size > 10_000, screenshot.stat()
    assert _png_size(screenshot) == window
    assert kept.read_bytes() == screenshot.read_bytes()
    assert kept.stat().st_size == screenshot.stat().st_size


# ----------------------------------------------------------------------------- re-execution

REEXECUTE = """
mutation Reexecute($params: ReexecutionParams!) {
  launchRunReexecution(reexecutionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message stack }
    ... on InvalidSubsetError { message }
  }
}"""


@pytest.fixture
def csv_market(lab_env, small_universe, tmp_path, monkeypatch):
    """Bars from CSV files, one per symbol; EEE's file is missing until the test writes it."""
    from quantlab_assets.data_curator.core.synthetic import SyntheticProvider

    bars = SyntheticProvider().fetch(small_universe, "2024-03-01", PARTITION).bars
    folder = tmp_path / "csv"
    folder.mkdir()
    files = {}
    for symbol, rows in bars.groupby("symbol"):
        files[symbol] = rows[["date", "open", "high", "low", "close", "adj_close", "volume"]].to_csv(index=False)
        if symbol != "EEE":
            (folder / f"{symbol}.csv").write_text(files[symbol])
    monkeypatch.setenv("QUANTLAB_DATA_PROVIDER", "csv")
    monkeypatch.setenv("QUANTLAB_CSV_DIR", str(folder))
    return folder, files


@pytest.fixture
def csv_server(csv_market, dagster_storage, tmp_path):
    server = Server(tmp_path)
    try:
        server.location = server.start()
        yield server
    finally:
        server.stop()


def test_reexecute_from_failure_as_the_ui_does(csv_server, csv_market, lab_env):
    """A run stopped by the ingest gate (one symbol's file missing) is fixed and re-executed from
    failure through the webserver's own mutation: the failed and skipped steps run, the rest not."""
    folder, files = csv_market
    parent_id = _launch(csv_server, csv_server.location, ["ohlcv", "labels"], PARTITION)
    parent = _wait(csv_server, parent_id)
    steps = {s["stepKey"]: s["status"] for s in parent["stepStats"]}
    assert parent["status"] == "FAILURE" and steps["ohlcv"] == "FAILURE", parent
    assert steps.get("labels") in (None, "SKIPPED"), steps  # the gate stopped the chain

    (folder / "EEE.csv").write_text(files["EEE"])
    again = csv_server.graphql(REEXECUTE, {"params": {"parentRunId": parent_id, "strategy": "FROM_FAILURE"}})
    again = again["launchRunReexecution"]
    assert again["__typename"] == "LaunchRunSuccess", again
    child = _wait(csv_server, again["run"]["runId"])
    assert child["status"] == "SUCCESS", f"{child}\n{csv_server.logs()}"
    assert child["parentRunId"] == parent_id and child["rootRunId"] == parent_id
    child_steps = {s["stepKey"]: s["status"] for s in child["stepStats"]}
    assert child_steps.get("ohlcv") == "SUCCESS" and child_steps.get("labels") == "SUCCESS", child_steps

    import duckdb

    with duckdb.connect(str(lab_env["QUANTLAB_DB"]), read_only=True) as con:
        symbols = con.execute("SELECT DISTINCT symbol FROM ohlcv WHERE date = ? ORDER BY 1", [PARTITION]).fetchall()
        labels = con.execute("SELECT count(*) FROM labels WHERE date = ?", [PARTITION]).fetchone()[0]
    assert [s for (s,) in symbols] == ["AAA", "BBB", "CCC", "DDD", "EEE"] and labels == 5


# ----------------------------------------------------------------------------- a backfilled lab

STAGES = ["targets", "backtest", "backtest_kpis", "approvals", "approved_targets"]
BACKFILL = ("2024-04-01", "2024-04-05")


def _launch_with(server: Server, assets: list[str], tags: dict[str, str]) -> str:
    params = {
        "selector": {
            "repositoryLocationName": server.location,
            "repositoryName": "__repository__",
            "jobName": "__ASSET_JOB",
            "assetSelection": [{"path": a.split("/")} for a in assets],
        },
        "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in tags.items()]},
    }
    launched = server.graphql(LAUNCH_RUN, {"params": params})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    return launched["run"]["runId"]


def _range(start: str, end: str) -> dict[str, str]:
    return {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end}


def _page_text(server: Server, path: str, window=(1600, 1200)) -> tuple[str, str]:
    """The rendered page's DOM and its visible text (tags stripped, entities decoded)."""
    import html

    dom = _chromium(f"{server.url}{path}", window)
    return dom, html.unescape(re.sub(r"<[^>]+>", " ", dom))


@pytest.fixture
def strategies_with_a_bad_file(tmp_path, monkeypatch):
    folder = tmp_path / "strategies"
    folder.mkdir()
    for path in sorted((PROJECT_ROOT / "strategies").glob("*.yaml")):
        shutil.copy(path, folder / path.name)
    (folder / "topk_typo.yaml").write_text(
        "name: topk_typo\nsignal: {kind: feature, feature: mom_12_1}\nselection: {kind: top_k, topk: 3}\n"
    )
    monkeypatch.setenv("QUANTLAB_STRATEGIES", str(folder))
    # A strict turnover limit for momentum_topk: its rebalance day (the month's first session,
    # bought from cash) is rejected with a reason, the days after are approved.
    rules = (PROJECT_ROOT / "quantlab_assets" / "portfolio_supervisor" / "risk_rules.yaml").read_text()
    (tmp_path / "risk_rules.yaml").write_text(
        rules.replace("strategies:\n", "strategies:\n  momentum_topk:\n    max_turnover: 0.3\n", 1)
    )
    monkeypatch.setenv("QUANTLAB_RISK_RULES", str(tmp_path / "risk_rules.yaml"))
    return sorted(p.stem for p in (PROJECT_ROOT / "strategies").glob("*.yaml"))


@pytest.fixture
def universe30(tmp_path, monkeypatch):
    """Thirty names: enough for every demo strategy to hold a book (their min_names is 8 to 10)."""
    path = tmp_path / "symbols30.yaml"
    sectors = ["Tech", "Energy", "Health", "Utilities"]
    path.write_text(
        "universe: test30\nsymbols:\n"
        + "".join(f"  - {{symbol: T{i:02d}, sector: {sectors[i % 4]}}}\n" for i in range(30))
    )
    monkeypatch.setenv("QUANTLAB_SYMBOLS", str(path))


@pytest.fixture
def backfill_server(lab_env, universe30, strategies_with_a_bad_file, tmp_path):
    server = Server(tmp_path)
    try:
        server.location = server.start()
        assert server.graphql("mutation { setNuxSeen }")["setNuxSeen"] is True
        yield server
    finally:
        server.stop()


def test_backfilled_lab_tells_each_day_and_strategy_apart(backfill_server, strategies_with_a_bad_file, lab_env):
    """After a backfill through the webserver: a rejected day's partition page shows that day's own
    reasons; every strategy's name is on its lineage nodes; the invalid strategy file's message is
    on the strategy_files page; the latest partition's equity chart is an image the server serves."""
    import duckdb

    from quantlab_assets.common.calendar import shift_sessions

    server, names = backfill_server, strategies_with_a_bad_file
    start, end = BACKFILL
    history = _range(str(shift_sessions(start, -260).date()), str(shift_sessions(start, -1).date()))
    run = _wait(server, _launch_with(server, ["ohlcv"], history), timeout=300)
    assert run["status"] == "SUCCESS", f"{run}\n{server.logs()}"
    # every feature set the strategies read (sma_cross_10_20 reads the toolbox set)
    chain = ["ohlcv", "features", "features_toolbox", "labels"] + [f"{n}/{n}_{s}" for n in names for s in STAGES]
    chain.append("strategy_leaderboard")
    run = _wait(server, _launch_with(server, chain, _range(start, end)), timeout=600)
    assert run["status"] == "SUCCESS", f"{run}\n{server.logs()}"

    # The rejected day's page shows its own status and reasons; the last (approved) day's shows its own.
    with duckdb.connect(str(lab_env["QUANTLAB_DB"]), read_only=True) as con:
        days = con.execute(
            "SELECT strftime(date, '%Y-%m-%d'), status, reasons FROM approvals "
            "WHERE strategy = 'momentum_topk' ORDER BY date",
            [],
        ).fetchall()
    assert len(days) == 5 and days[0][1] == "rejected" and "turnover" in days[0][2], days
    assert days[2][1] == "approved", days
    page = "/assets/momentum_topk/momentum_topk_approvals?view=partitions&partition="
    _, text = _page_text(server, page + days[0][0])
    assert days[0][2] in text, f"{days[0][0]}'s reasons {days[0][2]!r} not on its partition page"
    _, text = _page_text(server, page + days[2][0])
    assert "approved" in text and days[0][2] not in text, (
        f"{days[2][0]}'s page shows another day's reasons {days[0][2]!r}"
    )

    # Every strategy's name is on each of its nodes in the global lineage graph, drawn as full
    # nodes (zoom >= 0.6). Dagster middle-truncates a label over 31 characters
    # (ASSET_NODE_NAME_MAX_LENGTH): the strategy's name leads the label, the stage ends it.
    groups = ["backtest_engine", "data_curator", "feature_store", "portfolio_supervisor", "strategy_lab"]
    url = f"{server.url}/asset-groups?expanded=" + ",".join(f"global@global:{g}" for g in groups)
    probe = _parse(_chromium(url, PROBE_WINDOW))
    assert probe.graph_size, f"no asset graph on {url}"
    window = tuple(
        max(low, int(size * TARGET_ZOOM) + extra) for low, size, extra in zip(MIN_WINDOW, probe.graph_size, CHROME_PX)
    )
    graph = _parse(_chromium(url, window))
    assert not graph.minimal, f"graph drawn at low zoom (bare names) in a {window} window"
    shown = {}
    for n in names:
        for stage in STAGES:
            node = _node_for(graph, f"{n}/{n}_{stage}")
            assert node is not None, (
                f"{n}_{stage} not drawn with its name; nodes {[x['texts'][:1] for x in graph.nodes]}"
            )
            shown[f"{n}_{stage}"] = node["texts"][0]
    assert len(set(shown.values())) == len(shown), f"two strategies' nodes look the same: {shown}"
    # Issue 22 point 1: after a green run over a range every node's checks read "N / N Passed"
    # (not "0 / N" with the checks skipped); the approvals node, whose day_approved warning
    # failed on the rejected day, does not.
    for asset in ["ohlcv", "features", "features_toolbox", "momentum_topk/momentum_topk_backtest"]:
        texts = " ".join(_node_for(graph, asset)["texts"])
        assert re.search(r"\bAsset checks ([1-9]\d*) / \1 Passed\b", texts), f"{asset}: {texts}"
    texts = " ".join(_node_for(graph, "momentum_topk/momentum_topk_approvals")["texts"])
    passed = re.search(r"\bAsset checks (\d+) / (\d+) Passed\b", texts)
    assert passed and int(passed[1]) < int(passed[2]), texts

    _checks_tabs_tell_the_truth(server)
    _answers_on_the_asset_pages(server, lab_env, names, days[0])

    # The invalid strategy file, with file and field, where a user looks: the strategy_files asset.
    _, text = _page_text(server, "/assets/strategy_files")
    assert "topk_typo.yaml: field 'selection.topk': Extra inputs are not permitted" in text, text[-3000:]

    # The latest partition of the backfill carries the chart: an <img> whose URL the server serves as a PNG.
    dom, _ = _page_text(server, f"/assets/momentum_topk/momentum_topk_backtest_kpis?view=partitions&partition={end}")
    srcs = re.findall(r'<img[^>]+src="(/logs/[^"]+)"', dom)
    assert srcs, "no equity chart image on the latest partition's page"
    with urllib.request.urlopen(f"{server.url}{srcs[0]}", timeout=30) as resp:
        png = resp.read()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert width > 100 and height > 100, (width, height)


def _check_statuses(text: str) -> dict[str, str]:
    """The Checks tab's list: each check's name (shown twice: link and label) and its status."""
    listing = " ".join(text.split()).split("Execute all", 1)[-1]
    return dict(re.findall(r"\b(\w+) \1 (Succeeded|Failed|Skipped|Not evaluated|Executing|Warning)\b", listing))


def _checks_tabs_tell_the_truth(server: Server) -> None:
    """Issue 22 point 1 in the browser: after the range run the Checks tab of ohlcv and features
    lists every check as passed (Succeeded), none as Skipped; the approvals' day_approved check,
    which failed on the rejected day, is listed as failed."""
    from quantlab_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    for asset in ("ohlcv", "features"):
        declared = {c.name for c in graph.get(dg.AssetKey.from_user_string(asset)).check_keys}
        _, text = _page_text(server, f"/assets/{asset}?view=checks")
        statuses = _check_statuses(text)
        assert set(statuses) == declared, f"{asset}: listed {statuses}, declared {sorted(declared)}"
        assert set(statuses.values()) == {"Succeeded"}, f"{asset}: {statuses}"
    _, text = _page_text(server, "/assets/momentum_topk/momentum_topk_approvals?view=checks")
    statuses = _check_statuses(text)
    assert statuses.get("day_approved") == "Failed", statuses
    assert statuses.get("every_rejection_has_reason") == "Succeeded", statuses


def _answers_on_the_asset_pages(server: Server, lab_env, names: list[str], rejected) -> None:
    """Issue 22 point 7 in the browser: without choosing a partition, the backtest's page shows
    its headline KPIs formatted (Sharpe to 2 decimals, returns in percent, no 16-digit floats);
    the approvals' page lists the rejected day with its reasons; the leaderboard's ranking is a
    table on its page, not behind "Show Markdown"."""
    import duckdb

    day, status, reasons = rejected
    with duckdb.connect(str(lab_env["QUANTLAB_DB"]), read_only=True) as con:
        sharpe, total = con.execute(
            "SELECT sharpe_ratio, total_return FROM backtest_kpis WHERE strategy = 'momentum_topk' "
            "AND scope = 'since_start' ORDER BY date DESC LIMIT 1"
        ).fetchone()
    _, text = _page_text(server, "/assets/momentum_topk/momentum_topk_backtest")
    headline = f"Sharpe {sharpe:.2f} · total return {total:.2%}"
    assert headline in text, f"{headline!r} not on the backtest page: {text[:3000]}"
    assert "first invested session" in text, text[:3000]
    assert not re.search(r"\d\.\d{7,}", text), re.findall(r"\S*\d\.\d{7,}\S*", text)
    _, text = _page_text(server, "/assets/momentum_topk/momentum_topk_approvals")
    assert f"Not approved date status reasons {day} {status} {reasons}" in " ".join(text.split()), text[:3000]
    _, text = _page_text(server, "/assets/strategy_leaderboard")
    flat = " ".join(text.split())
    assert "ranking" in flat and "strategy sharpe_ratio approval_rate flag" in flat, flat[:3000]
    ranking = flat.split("strategy sharpe_ratio approval_rate flag", 1)[1].split("[Show Markdown]", 1)[0]
    assert all(n in ranking for n in names), f"the ranking table does not show every strategy: {ranking}"
