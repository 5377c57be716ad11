"""The data store: keys, URIs, atomic writes and listings over a local directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from settlement.adapters.storage import DataStore


def test_written_bytes_read_back_and_leave_no_temp_file(tmp_path: Path) -> None:
    # GIVEN an empty store WHEN a key is written THEN it reads back and no temp file remains
    store = DataStore(str(tmp_path))
    store.write_bytes("runs/r1/report.json", b"{}")
    assert store.read_bytes("runs/r1/report.json") == b"{}"
    assert [p.name for p in (tmp_path / "runs" / "r1").iterdir()] == ["report.json"]


def test_listing_is_sorted_and_empty_for_a_missing_prefix(tmp_path: Path) -> None:
    store = DataStore(f"file://{tmp_path}")
    for key in ("incoming/transactions/b.csv", "incoming/transactions/a.csv", "other/x"):
        store.write_bytes(key, b"x")
    assert list(store.list("incoming/transactions")) == [
        "incoming/transactions/a.csv",
        "incoming/transactions/b.csv",
    ]
    assert list(store.list("nowhere")) == []


def test_uri_and_key_are_inverse_and_outside_paths_are_refused(tmp_path: Path) -> None:
    store = DataStore(str(tmp_path))
    uri = store.uri("runs/r1/lines")
    assert store.key_of(uri) == "runs/r1/lines"
    with pytest.raises(ValueError, match="outside the data store"):
        store.key_of("/somewhere/else")


def test_json_round_trip_and_prefix_deletion(tmp_path: Path) -> None:
    store = DataStore(str(tmp_path))
    store.write_json("runs/r1/a.json", {"total": "1.10"})
    assert store.read_json("runs/r1/a.json") == {"total": "1.10"}
    store.delete_prefix("runs/r1")
    assert not store.exists("runs/r1/a.json")
