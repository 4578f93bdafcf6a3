"""Conformance tool: its demo month exports cleanly (the official files are checked by make)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from line_service.authority.rpc_export import export_rpc
from line_service.network.lines_file import load_network
from line_service.storage.store import Store
from tools.conformance import DAYS, LINES, MONTH, _nullable, main, seed_month


def test_the_demo_month_gives_valid_journeys_and_none_left_out(tmp_path: Path) -> None:
    network = load_network(LINES)
    store = Store(f"sqlite:///{tmp_path / 'demo.db'}")
    store.create_schema()
    try:
        rides = seed_month(store, network)
        export = export_rpc(store, network, MONTH, MONTH + timedelta(days=DAYS - 1))
    finally:
        store.dispose()
    assert len(export.journeys) == rides > 100
    assert export.invalid == {}
    assert dict(export.skipped) == {}


def test_nullable_lets_null_in() -> None:
    schema = {"properties": {"a": {"type": "string", "nullable": True}, "b": {"enum": [1]}}}
    assert _nullable(schema) == {
        "properties": {"a": {"type": ["string", "null"]}, "b": {"enum": [1]}}
    }


def test_a_folder_without_the_specs_is_a_usage_error(tmp_path: Path) -> None:
    assert main([str(tmp_path)]) == 2
