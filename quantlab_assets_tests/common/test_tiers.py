"""Test tiers are assigned from what a test does (support/tiers.py): hand-built modules with one
behaviour each, and the tiers of a few tests of this suite whose behaviour is known."""

from __future__ import annotations

import textwrap

import pytest

from quantlab_assets_tests.support.tiers import module_tiers, tier_of_test

MODULE = """
import subprocess

import dagster as dg
import pytest


def _run(assets):
    return dg.materialize(assets)


def _seed():
    return _run([])  # heavy through another helper


def _pure(x):
    return x + 1


@pytest.fixture
def seeded():
    _seed()


def test_pure():
    assert _pure(1) == 2


def test_through_helpers():
    _seed()


def test_with_seeded_fixture(seeded):
    pass


def test_cli():
    subprocess.run(["quantlab", "--help"], check=True)


def test_pg(postgres_db):
    pass


def test_storage(dagster_storage):
    pass


class TestGroup:
    def test_inside(self):
        dg.materialize([])
"""

CONFTEST = """
import pytest


@pytest.fixture
def warehouse():
    from dagster import materialize

    materialize([])
"""


@pytest.fixture
def tree(tmp_path):
    pkg = tmp_path / "tests_probe"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "conftest.py").write_text(textwrap.dedent(CONFTEST))
    path = pkg / "sub" / "test_probe.py"
    path.write_text(textwrap.dedent(MODULE))
    module_tiers.cache_clear()
    return pkg, path


@pytest.mark.parametrize(
    ("name", "fixtures", "params", "expected"),
    [
        ("test_pure", (), {}, "unit"),
        ("test_through_helpers", (), {}, "e2e"),
        ("test_with_seeded_fixture", ("seeded",), {}, "e2e"),
        ("test_cli", (), {}, "system"),
        ("test_pg", ("postgres_db", "make_postgres_db", "postgres_server"), {}, "system"),
        ("test_storage", ("dagster_storage",), {"dagster_storage": "sqlite"}, "unit"),
        ("test_storage", ("dagster_storage",), {"dagster_storage": "postgres"}, "system"),
        ("TestGroup", (), {}, "e2e"),
        ("test_pure", ("warehouse",), {}, "e2e"),  # a conftest fixture above the module
        ("test_pure", ("tmp_path", "monkeypatch"), {}, "unit"),
    ],
)
def test_tier_follows_helpers_fixtures_and_parameters(tree, name, fixtures, params, expected):
    root, path = tree
    assert tier_of_test(path, name, fixtures, root, params) == expected


def test_helper_tiers_are_closed_over_the_module(tree):
    _, path = tree
    tiers = module_tiers(path)
    assert (tiers["_run"], tiers["_seed"], tiers["_pure"], tiers["seeded"]) == ("e2e", "e2e", "unit", "e2e")


def test_this_suite_is_marked(request):
    assert request.node.get_closest_marker("unit") is not None
    assert not request.node.get_closest_marker("e2e") and not request.node.get_closest_marker("system")
