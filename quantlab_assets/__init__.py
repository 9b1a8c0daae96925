"""Quant Lab: a quant research platform built as a Dagster asset graph.

Each team of the production chain (see the seed document) is a subpackage with a pure
``core`` (numpy / pandas / duckdb, no Dagster) and a thin Dagster layer. The single
``Definitions`` object lives in :mod:`quantlab_assets.definitions`.
"""
