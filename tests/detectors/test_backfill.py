"""Backfill over history: windows tiled, every detector stored once, ids deterministic."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd
import pytest

from keelwatch.detectors import DriftConfig, Window, backfill, register_baseline, run_drift
from keelwatch.detectors._sql import format_segment
from keelwatch.detectors._stored import detection_rows, store_run
from keelwatch.detectors._windows import run_id
from keelwatch.store import Store

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _history(store: Store, rng: np.random.Generator, put: Any) -> tuple[Any, np.ndarray]:
    """A baseline, then 4 h of traffic: 600 normal rows per hour, an hour with nothing, and a
    last hour shifted by 1.5 standard deviations."""
    baseline = register_baseline(store, "m", pd.DataFrame({"x": rng.normal(0, 1, 1500)}))
    ts, x = [], []
    for hour, shift in ((0, 0.0), (1, 0.0), (3, 1.5)):
        start = T0 + timedelta(hours=hour)
        ts += [start + timedelta(seconds=6 * i) for i in range(600)]
        x.append(rng.normal(shift, 1, 600))
    put(store, ts, np.concatenate(x))
    return baseline, np.concatenate(x)


def _stored(store: Store) -> list[dict[str, Any]]:
    return store.query(
        "SELECT run_id, window_start, window_end, window_kind, window_count, segment, "
        "count() AS n FROM drift_results GROUP BY ALL ORDER BY window_start"
    ).to_pylist()


def _stored_others(store: Store) -> dict[str, dict[tuple[str, str, str], float]]:
    """``detector_results`` per run id: (detector, metric, subject) -> value."""
    out: dict[str, dict[tuple[str, str, str], float]] = {}
    for r in store.query("SELECT * FROM detector_results").to_pylist():
        key = (r["detector"], r["metric"], r["subject"])
        assert key not in out.setdefault(r["run_id"], {}), "a metric stored twice"
        out[r["run_id"]][key] = r["value"]
    return out


def test_backfill_tiles_history_and_rerun_stores_nothing_twice(
    store: Store, rng: np.random.Generator, put: Any
) -> None:
    _history(store, rng, put)
    end = T0 + timedelta(hours=4)
    done = backfill(store, "m", T0, end, every="1h")
    assert [w.start for w in done.windows] == [T0 + timedelta(hours=h) for h in (0, 1, 3)]
    assert [w.start for w in done.empty] == [T0 + timedelta(hours=2)]
    every = sorted((*done.windows, *done.empty), key=lambda w: w.start)
    assert every[0].start == T0 and every[-1].end == end
    assert all(a.end == b.start for a, b in pairwise(every))
    assert [r.n_current for r in done.runs] == [600, 600, 600]
    assert [r.dataset_drift for r in done.runs] == [False, False, True]
    first = _stored(store)
    assert len(first) == 3 and {r["window_kind"] for r in first} == {"time"}
    assert [r["run_id"] for r in first] == [r.run_id for r in done.runs]
    # The detectors beside drift ran on the same windows and are stored under the same ids.
    assert [d.window for d in done.detections] == [r.window for r in done.runs]
    others = _stored_others(store)
    assert set(others) == {r.run_id for r in done.runs}
    for run, detection in zip(done.runs, done.detections, strict=True):
        assert detection.failures == ()
        expected = {r[:3]: r[5] for r in detection_rows(detection) if r[5] is not None}
        assert others[run.run_id] == pytest.approx(expected)
        assert others[run.run_id][("quality", "rows", "")] == 600

    again = backfill(store, "m", T0, end, every="1h")
    assert again.runs == () and len(again.skipped) == 3 and again.detections == ()
    assert _stored(store) == first
    assert _stored_others(store) == others

    # Late data, then a replacing re-run: the same run ids, recomputed, still one copy each.
    put(store, [T0 + timedelta(hours=1, seconds=5)], np.array([0.0]))
    redone = backfill(store, "m", T0, end, every="1h", replace_stored=True)
    assert [r.run_id for r in redone.runs] == [r["run_id"] for r in first]
    assert [r.n_current for r in redone.runs] == [600, 601, 600]
    assert [(r["run_id"], r["n"]) for r in _stored(store)] == [(r["run_id"], r["n"]) for r in first]
    replaced = _stored_others(store)
    assert {rid: set(m) for rid, m in replaced.items()} == {
        rid: set(m) for rid, m in others.items()
    }
    rows = [replaced[r.run_id][("quality", "rows", "")] for r in redone.runs]
    assert rows == [600, 601, 600]


def test_count_backfill_tiles_and_is_idempotent(
    store: Store, rng: np.random.Generator, put: Any
) -> None:
    _history(store, rng, put)
    end = T0 + timedelta(hours=4)
    done = backfill(store, "m", T0, end, count=400)
    assert [r.n_current for r in done.runs] == [400, 400, 400, 400, 200]
    assert done.windows[0].start == T0 and done.windows[-1].end == end
    assert all(a.end == b.start for a, b in pairwise(done.windows))
    stored = _stored(store)
    assert {(r["window_kind"], r["window_count"]) for r in stored} == {("count", 400)}
    assert backfill(store, "m", T0, end, count=400).runs == ()
    assert _stored(store) == stored
    assert set(_stored_others(store)) == {r.run_id for r in done.runs}
    with pytest.raises(ValueError, match="every, count: give exactly one"):
        backfill(store, "m", T0, end)
    with pytest.raises(ValueError, match="count: must be a whole number >= 1"):
        backfill(store, "m", T0, end, count=0)
    with pytest.raises(LookupError, match="has no baseline"):
        backfill(store, "other", T0, end, count=10)


def test_backfill_by_tag_stores_segment_and_version(
    store: Store, rng: np.random.Generator, put: Any
) -> None:
    register_baseline(store, "m", pd.DataFrame({"x": rng.normal(0, 1, 1500)}))
    n = 1200
    ts = [T0 + timedelta(seconds=6 * i) for i in range(n)]  # 2 h
    x = np.where(np.arange(n) % 2 == 0, rng.normal(0, 1, n), rng.normal(2, 1, n))
    put(store, ts, x, [{"tenant": "a"}, {"tenant": "b"}] * (n // 2))
    end = T0 + timedelta(hours=2)
    # 300 values a window: a threshold above the sampling noise of W1 (~0.1), far below 2.
    config = DriftConfig(thresholds={"wasserstein": 0.3})
    done = backfill(store, "m", T0, end, every="1h", by_tag="tenant", config=config)
    got = {(format_segment(r.window.segment), r.window.start): r.dataset_drift for r in done.runs}
    assert got == {
        ("tenant=a", T0): False,
        ("tenant=a", T0 + timedelta(hours=1)): False,
        ("tenant=b", T0): True,
        ("tenant=b", T0 + timedelta(hours=1)): True,
    }
    rows = store.query(
        "SELECT segment, version, slot, uniqExact(run_id) AS runs FROM drift_results "
        "GROUP BY ALL ORDER BY segment"
    ).to_pylist()
    assert rows == [
        {"segment": "tenant=a", "version": "", "slot": "", "runs": 2},
        {"segment": "tenant=b", "version": "", "slot": "", "runs": 2},
    ]
    others = store.query(
        "SELECT segment, uniqExact(run_id) AS runs, sumIf(value, metric = 'rows') AS rows "
        "FROM detector_results GROUP BY segment ORDER BY segment"
    ).to_pylist()
    assert others == [
        {"segment": "tenant=a", "runs": 2, "rows": 600.0},
        {"segment": "tenant=b", "runs": 2, "rows": 600.0},
    ]
    with pytest.raises(ValueError, match="by_tag: 2 values of 'tenant' make more than 3 windows"):
        backfill(store, "m", T0, end, every="1h", by_tag="tenant", max_windows=3)


def test_backfill_of_drift_only(store: Store, rng: np.random.Generator, put: Any) -> None:
    _history(store, rng, put)
    done = backfill(store, "m", T0, T0 + timedelta(hours=4), every="1h", detectors=False)
    assert len(done.runs) == 3 and done.detections == ()
    assert len(_stored(store)) == 3 and _stored_others(store) == {}


def test_run_ids_are_deterministic_and_a_stored_run_is_kept_once(
    store: Store, rng: np.random.Generator, put: Any
) -> None:
    baseline, _ = _history(store, rng, put)
    window = Window("m", T0, T0 + timedelta(hours=1), version="2", segment=(("k", "v"),))
    config = DriftConfig()
    rid = run_id(window, baseline.baseline_id, config)
    same = Window("m", T0, window.end, version="2", segment={"k": "v"})  # type: ignore[arg-type]
    assert rid == run_id(same, baseline.baseline_id, DriftConfig())
    assert rid != run_id(window, baseline.baseline_id, DriftConfig(drift_share=0.3))
    assert rid != run_id(Window("m", T0, window.end, version="2"), baseline.baseline_id, config)
    run = replace(run_drift(store, baseline, Window("m", T0, T0 + timedelta(hours=1))), run_id=rid)
    store_run(store, run)
    store_run(store, run)  # a retry: the deduplication token keeps one copy
    assert store.query("SELECT count() AS n FROM drift_results").to_pylist() == [
        {"n": len(run.results)}
    ]
