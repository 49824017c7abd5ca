"""Data quality, operations and the all-detectors ``detect`` call."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from keelwatch.detectors import (
    Detection,
    DetectorFailure,
    Window,
    detect,
    operations,
    quality,
    register_baseline,
    set_compute_price,
    store_detection,
)
from keelwatch.store import Store, StoreError


def test_quality(store: Store, rng: np.random.Generator, insert: Any) -> None:
    ref = pd.DataFrame(
        {
            "x": rng.uniform(0, 1, 1000),
            "k": rng.normal(size=1000),
            "gone": rng.normal(size=1000),
            "c": rng.choice(["a", "b"], 1000),
        }
    )
    baseline = register_baseline(store, "m", ref)
    n = 400
    x = rng.uniform(0, 1.25, n)  # about 20% above the baseline's max
    x[:40] = np.nan
    cur = pd.DataFrame(
        {
            "x": x,
            "k": np.full(n, 3.0),
            "c": np.where(np.arange(n) < 100, "new", "a"),
            "extra": rng.normal(size=n),
        }
    )
    ids = [f"p{i}" for i in range(n)]
    ids[-1] = ids[0]  # a repeated id
    window = insert(store, "m", cur, prediction_id=ids)
    q = quality(store, baseline, window)
    assert q.rows == n and q.duplicate_ids == 1
    assert q.missing_features == ("gone",) and q.unexpected_features == ("extra",)
    by = {f.feature: f for f in q.features}
    assert by["x"].missing_rate == pytest.approx(0.1)
    finite = x[np.isfinite(x)]
    expected = np.mean((finite > ref["x"].max()) | (finite < ref["x"].min()))
    assert by["x"].out_of_range_share == pytest.approx(expected)
    assert by["c"].unseen_share == pytest.approx(0.25)
    assert by["k"].constant and not by["x"].constant and not by["c"].constant
    assert by["gone"].missing_rate == 1.0


def test_operations_per_version_and_slot(
    store: Store, rng: np.random.Generator, insert: Any
) -> None:
    start = pd.Timestamp("2026-01-01", tz="UTC").to_pydatetime()
    latency = {"stable": rng.gamma(2.0, 10.0, 300), "canary": rng.gamma(2.0, 20.0, 200)}
    for slot, lat in latency.items():
        errors = ["" if i % 10 else "TimeoutError: slow" for i in range(lat.size)]
        insert(
            store,
            "m",
            pd.DataFrame({"x": np.zeros(lat.size)}),
            start=start,
            version="v2",
            slot=slot,
            latency_ms=lat,
            error=errors,
        )
    window = Window("m", start, start + timedelta(seconds=1))
    rows = {o.slot: o for o in operations(store, window)}
    assert set(rows) == {"canary", "stable"}
    for slot, lat in latency.items():
        o = rows[slot]
        assert o.calls == lat.size and o.version == "v2"
        assert o.failure_rate == pytest.approx(np.ceil(lat.size / 10) / lat.size)
        assert o.throughput_per_s == pytest.approx(lat.size)
        np.testing.assert_allclose(
            [o.latency_p50_ms, o.latency_p95_ms, o.latency_p99_ms],
            np.percentile(lat, [50, 95, 99]),
            rtol=1e-12,
        )


def test_detect_runs_everything(store: Store, rng: np.random.Generator, insert: Any) -> None:
    start = pd.Timestamp("2026-01-01", tz="UTC").to_pydatetime()
    empty = detect(store, "m", start, start + timedelta(hours=1))
    assert isinstance(empty, Detection) and empty.drift is None and empty.quality is None
    register_baseline(store, "m", pd.DataFrame({"x": rng.normal(size=500)}))
    insert(store, "m", pd.DataFrame({"x": rng.normal(2.0, 1.0, size=300)}), start=start)
    found = detect(store, "m", start, start + timedelta(hours=1), multivariate=True)
    assert found.drift is not None and found.drift.dataset_drift
    assert found.quality is not None and found.quality.rows == 300
    assert found.operations[0].calls == 300
    assert found.classification is None and found.calibration is None and found.regression is None
    assert found.multivariate is not None and found.multivariate.drifted
    assert found.reconstruction is None  # one numeric feature: PCA does not apply
    assert found.labels is not None and (found.labels.predictions, found.labels.coverage) == (
        300,
        0,
    )
    assert [c.unpriced for c in found.cost] == [300]
    set_compute_price(store, "m", 1.0, 0.002, effective_from=start)
    priced = detect(store, "m", start, start + timedelta(hours=1)).cost
    assert [(c.priced, c.compute_cost) for c in priced] == [(300, pytest.approx(0.6))]


class _FailingOperations:
    """The real store, except that operations' latency query fails as an engine error would."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def command(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        self.store.command(sql, params)

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> pa.Table:
        if "quantilesExactInclusive(0.5, 0.95, 0.99)(latency_ms)" in sql:
            raise StoreError("Code: 241. DB::Exception: Memory limit exceeded", sql)
        return self.store.query(sql, params)

    def insert(self, table: str, data: pa.Table, dedup_token: str | None = None) -> None:
        self.store.insert(table, data, dedup_token)

    def close(self) -> None:
        self.store.close()


def test_a_failing_detector_is_reported_and_the_others_still_run(
    store: Store, rng: np.random.Generator, insert: Any
) -> None:
    start = pd.Timestamp("2026-01-01", tz="UTC").to_pydatetime()
    register_baseline(store, "m", pd.DataFrame({"x": rng.normal(size=500)}))
    insert(store, "m", pd.DataFrame({"x": rng.normal(size=300)}), start=start)
    found = detect(_FailingOperations(store), "m", start, start + timedelta(hours=1))
    assert found.failures == (
        DetectorFailure("operations", "Code: 241. DB::Exception: Memory limit exceeded"),
    )
    assert found.operations == ()
    assert found.drift is not None and found.quality is not None and found.quality.rows == 300
    assert found.labels is not None and found.labels.predictions == 300
    assert [c.unpriced for c in found.cost] == [300]
    assert detect(store, "m", start, start + timedelta(hours=1)).failures == ()


def test_store_detection_writes_each_metric_once(
    store: Store, rng: np.random.Generator, insert: Any
) -> None:
    start = pd.Timestamp("2026-01-01", tz="UTC").to_pydatetime()
    ref = pd.DataFrame({"x": rng.normal(size=500), "c": rng.choice(["a", "b"], 500)})
    register_baseline(store, "m", ref)
    cur = pd.DataFrame({"x": rng.normal(size=300), "c": rng.choice(["a", "b", "z"], 300)})
    insert(store, "m", cur, start=start)
    found = detect(store, "m", start, start + timedelta(hours=1))
    assert found.drift is not None and found.quality is not None
    for _ in range(2):  # a retry stores nothing twice
        store_detection(store, found.drift.run_id, found)
    rows = store.query(
        "SELECT detector, metric, subject, version, value FROM detector_results "
        "WHERE model = 'm' ORDER BY detector, metric, subject"
    ).to_pylist()
    stored = {(r["detector"], r["metric"], r["subject"]): r["value"] for r in rows}
    assert len(stored) == len(rows)
    by = {f.feature: f for f in found.quality.features}
    assert stored["quality", "rows", ""] == 300
    assert stored["quality", "out_of_range_share", "x"] == by["x"].out_of_range_share
    assert stored["quality", "unseen_share", "c"] == pytest.approx(by["c"].unseen_share)
    assert by["c"].unseen_share > 0
    [ops] = found.operations
    assert stored["operations", "calls", ""] == 300
    assert stored["operations", "latency_p95_ms", ""] == ops.latency_p95_ms
    assert stored["labels", "coverage", ""] == 0
    # No outcomes: no classification, regression or calibration rows; no price: no cost row.
    assert {r["detector"] for r in rows} == {"quality", "operations", "labels"}
