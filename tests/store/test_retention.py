"""Retention: TTLs set from configuration, left alone when unchanged, removable."""

from __future__ import annotations

import time

import pyarrow as pa
import pytest

from keelwatch.store import RETAINED, EmbeddedStore, Retention, apply_retention


def ttl(store: EmbeddedStore, table: str) -> str:
    query = store.query(
        "SELECT create_table_query AS q FROM system.tables WHERE name = {t:String}", {"t": table}
    )
    text = query.column("q")[0].as_py()
    return text[text.find("TTL") :] if "TTL" in text else ""


def test_ttl_applied_once_then_changed_then_removed(store: EmbeddedStore) -> None:
    assert apply_retention(store, Retention(raw_days=30)) == {
        table: (30 if period == "raw_days" else 400) for table, (_, period) in RETAINED.items()
    }
    assert "toIntervalDay(30)" in ttl(store, "predictions")
    assert apply_retention(store, Retention(raw_days=30)) == {}
    assert apply_retention(store, Retention(raw_days=7)) == {
        "predictions": 7,
        "outcomes": 7,
        "spans": 7,
    }
    assert apply_retention(store, Retention(raw_days=0))["predictions"] == 0
    assert ttl(store, "predictions") == ""


def test_expired_rows_are_dropped(store: EmbeddedStore) -> None:
    old = (time.time() - 10 * 86400) * 1e6
    new = time.time() * 1e6
    store.insert(
        "outcomes",
        pa.table(
            {
                "model": ["m", "m"],
                "prediction_id": ["old", "new"],
                "ts": pa.array([int(old), int(new)]).cast(pa.timestamp("us", tz="UTC")),
                "label": ["1", "0"],
            }
        ),
    )
    apply_retention(store, Retention(raw_days=5))
    store.command("OPTIMIZE TABLE outcomes FINAL")
    ids = store.query("SELECT prediction_id FROM outcomes").column("prediction_id").to_pylist()
    assert ids == ["new"]


@pytest.mark.parametrize("days", [-1, 1.5, True, 10**6])
def test_bad_periods_are_refused(days: object) -> None:
    with pytest.raises(ValueError, match="raw_days"):
        Retention(raw_days=days)  # type: ignore[arg-type]
