"""Windows by tag segment and by prediction count, and backfill over history."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from scipy.stats import wasserstein_distance

from keelwatch.detectors import (
    DriftConfig,
    Window,
    backfill,
    detect,
    register_baseline,
    run_drift,
)
from keelwatch.detectors._sql import (
    format_segment,
    micros,
    parse_segment,
    segment_of,
    window_count,
)
from keelwatch.detectors._stored import detection_rows, store_run
from keelwatch.detectors._windows import (
    count_windows,
    latest_count_window,
    parse_every,
    run_id,
    segment_values,
    segment_windows,
    time_windows,
)
from keelwatch.store import EmbeddedStore, Store, migrate
from keelwatch.store._schema import MIGRATIONS

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
TAGS = pa.map_(pa.string(), pa.string())


def _put(
    store: Store,
    ts: list[datetime],
    x: np.ndarray | None = None,
    tags: list[dict[str, str]] | None = None,
    model: str = "m",
) -> None:
    """Predictions at ``ts`` with numeric feature ``x`` and ``tags``."""
    n = len(ts)
    x = np.zeros(n) if x is None else x
    store.insert(
        "predictions",
        pa.table(
            {
                "project": ["default"] * n,
                "model": [model] * n,
                "prediction_id": [uuid.uuid4().hex for _ in range(n)],
                "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
                "num": pa.array([[("x", float(v))] for v in x], pa.map_(pa.string(), pa.float64())),
                "tags": pa.array([list((t or {}).items()) for t in tags or [{}] * n], TAGS),
            }
        ),
    )


def _ms(*offsets: float) -> list[datetime]:
    return [T0 + timedelta(milliseconds=o) for o in offsets]


def _count(store: Store, window: Window) -> int:
    return window_count(store, window)


# --- segments -------------------------------------------------------------------------------


def test_segment_text_round_trips_and_bad_segments_are_named() -> None:
    seg = segment_of({"tenant": "o'brien, inc", "a=b": "100%"})
    assert seg == (("a=b", "100%"), ("tenant", "o'brien, inc"))
    assert format_segment(seg) == "a%3Db=100%25,tenant=o'brien%2C inc"
    assert parse_segment(format_segment(seg)) == seg
    assert parse_segment("") == () and format_segment(()) == ""
    with pytest.raises(ValueError, match="segment: a tag key is empty"):
        segment_of({"": "x"})
    with pytest.raises(ValueError, match="segment: tag 'k' is given twice"):
        segment_of([("k", "1"), ("k", "2")])
    with pytest.raises(ValueError, match="must be strings"):
        segment_of({"k": 1})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="count: must be a whole number"):
        Window("m", T0, T0, count=-1)


def test_segment_filter_restricts_rows(store: Store) -> None:
    # Hand-counted: 6 acme/eu, 3 acme/us, 4 beta/eu, 2 with no tenant, 1 tricky value.
    tags = (
        [{"tenant": "acme", "region": "eu"}] * 6
        + [{"tenant": "acme", "region": "us"}] * 3
        + [{"tenant": "beta", "region": "eu"}] * 4
        + [{"region": "eu"}] * 2
        + [{"tenant": "o'brien, inc"}]
    )
    _put(store, _ms(*range(len(tags))), tags=tags)
    whole = Window("m", T0, T0 + timedelta(seconds=1))
    assert _count(store, whole) == 16
    expected = {
        (("tenant", "acme"),): 9,
        (("tenant", "beta"),): 4,
        (("region", "eu"), ("tenant", "acme")): 6,
        (("region", "eu"),): 12,
        (("tenant", "o'brien, inc"),): 1,
        (("tenant", ""),): 0,  # a missing tag is not an empty value
        (("tenant", "nobody"),): 0,
    }
    for seg, n in expected.items():
        assert _count(store, Window("m", whole.start, whole.end, segment=seg)) == n, seg
    assert segment_values(store, whole, "tenant") == ["acme", "beta", "o'brien, inc"]
    assert [w.segment for w in segment_windows(store, whole, "tenant", max_values=3)] == [
        (("tenant", "acme"),),
        (("tenant", "beta"),),
        (("tenant", "o'brien, inc"),),
    ]
    eu = Window("m", whole.start, whole.end, segment=(("region", "eu"),))
    assert segment_values(store, eu, "tenant") == ["acme", "beta"]
    with pytest.raises(ValueError, match="by_tag: tag 'tenant' has more than 2 values"):
        segment_values(store, whole, "tenant", max_values=2)
    with pytest.raises(ValueError, match="already fixed by the segment"):
        segment_values(store, eu, "region")


def test_drift_is_flagged_only_in_the_shifted_segment(store: Store) -> None:
    rng = np.random.default_rng(7)
    reference = rng.normal(0, 1, 2000)
    baseline = register_baseline(store, "m", pd.DataFrame({"x": reference}))
    same, shifted = rng.normal(0, 1, 400), rng.normal(1.0, 1, 400)
    x = np.empty(800)
    x[0::2], x[1::2] = same, shifted  # interleaved in time: only the tag tells them apart
    _put(store, _ms(*range(800)), x, [{"tenant": "a"}, {"tenant": "b"}] * 400)
    whole = Window("m", T0, T0 + timedelta(seconds=1))
    runs = {
        w.segment[0][1]: run_drift(store, baseline, w)
        for w in segment_windows(store, whole, "tenant")
    }
    assert {k: r.dataset_drift for k, r in runs.items()} == {"a": False, "b": True}
    std = float(np.std(reference))
    for name, values in (("a", same), ("b", shifted)):
        w1 = runs[name].result("x", "wasserstein")
        assert w1.n_current == 400
        assert w1.score == pytest.approx(wasserstein_distance(reference, values) / std, rel=1e-9)
    detection = detect(store, "m", whole.start, whole.end, segment={"tenant": "b"})
    assert detection.window.segment == (("tenant", "b"),)
    assert detection.drift is not None and detection.drift.n_current == 400


# --- count windows --------------------------------------------------------------------------


def test_count_windows_hold_exactly_n_with_distinct_timestamps(store: Store) -> None:
    _put(store, _ms(*range(1000)), np.arange(1000.0))
    whole = Window("m", T0, T0 + timedelta(seconds=2))
    windows = count_windows(store, whole, 300)
    assert [_count(store, w) for w in windows] == [300, 300, 300, 100]
    assert windows[0].start == whole.start and windows[-1].end == whole.end
    assert [w.start for w in windows[1:]] == _ms(300, 600, 900)
    assert {w.count for w in windows} == {300} and {w.kind for w in windows} == {"count"}
    latest = latest_count_window(store, whole, 250)
    assert latest.start == T0 + timedelta(milliseconds=750) and latest.end == whole.end
    assert _count(store, latest) == 250
    assert _count(store, latest_count_window(store, whole, 5000)) == 1000  # all there is
    empty = Window("m", T0 - timedelta(days=1), T0)
    assert count_windows(store, empty, 10) == []
    nothing = latest_count_window(store, empty, 10)
    assert nothing.start == nothing.end == T0 and _count(store, nothing) == 0


def test_count_windows_tie_rule(store: Store) -> None:
    # Sorted rows 0..9 at ms [0, 1, 1, 1, 2, 3, 3, 4, 5, 6]. N = 3 puts boundaries at the
    # timestamps of rows 3, 6 and 9 (1, 3 and 6 ms); every row stamped on a boundary goes to
    # the window starting there: sizes 1, 4, 4, 1.
    _put(store, _ms(0, 1, 1, 1, 2, 3, 3, 4, 5, 6))
    whole = Window("m", T0, T0 + timedelta(seconds=1))
    windows = count_windows(store, whole, 3)
    assert [w.start for w in windows] == [T0, *_ms(1, 3, 6)]
    assert [_count(store, w) for w in windows] == [1, 4, 4, 1]
    # More rows on one timestamp than N: no empty window, the boundary is used once.
    assert [_count(store, w) for w in count_windows(store, whole, 2)] == [1, 3, 1, 3, 2]
    # The 3 latest are rows at 4, 5, 6 ms; the 4th latest is stamped 3 ms, shared with row 5.
    assert _count(store, latest_count_window(store, whole, 3)) == 3
    assert _count(store, latest_count_window(store, whole, 4)) == 5


def test_a_prediction_on_a_boundary_microsecond_is_in_the_later_window(store: Store) -> None:
    edge = T0 + timedelta(microseconds=123_457)
    _put(store, [edge - timedelta(microseconds=1), edge, edge + timedelta(microseconds=1)])
    assert micros(edge) == 1_767_225_600_123_457
    assert _count(store, Window("m", T0, edge)) == 1
    assert _count(store, Window("m", edge, edge + timedelta(seconds=1))) == 2


# --- time windows and backfill --------------------------------------------------------------


def test_parse_every() -> None:
    assert parse_every("90s") == timedelta(seconds=90)
    assert parse_every("1.5h") == timedelta(minutes=90)
    assert parse_every(60) == timedelta(minutes=1)
    for bad in ("0s", "1w", "soon", -5, True, float("nan")):
        with pytest.raises(ValueError, match="every: "):
            parse_every(bad)  # type: ignore[arg-type]


def test_time_windows_tile_the_range() -> None:
    whole = Window("m", T0, T0 + timedelta(hours=3, minutes=30), segment=(("t", "a"),))
    windows = time_windows(whole, timedelta(hours=1))
    assert [w.start for w in windows] == [T0 + timedelta(hours=h) for h in range(4)]
    assert windows[-1].end == whole.end and windows[-1].end - windows[-1].start == timedelta(
        minutes=30
    )
    assert all(a.end == b.start for a, b in pairwise(windows))
    assert {w.segment for w in windows} == {(("t", "a"),)}
    with pytest.raises(ValueError, match=r"every: .* more than 100;"):
        time_windows(whole, timedelta(minutes=1), max_windows=100)


def _history(store: Store, rng: np.random.Generator) -> tuple[Any, np.ndarray]:
    """A baseline, then 4 h of traffic: 600 normal rows per hour, an hour with nothing, and a
    last hour shifted by 1.5 standard deviations."""
    baseline = register_baseline(store, "m", pd.DataFrame({"x": rng.normal(0, 1, 1500)}))
    ts, x = [], []
    for hour, shift in ((0, 0.0), (1, 0.0), (3, 1.5)):
        start = T0 + timedelta(hours=hour)
        ts += [start + timedelta(seconds=6 * i) for i in range(600)]
        x.append(rng.normal(shift, 1, 600))
    _put(store, ts, np.concatenate(x))
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
    store: Store, rng: np.random.Generator
) -> None:
    _history(store, rng)
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
    _put(store, [T0 + timedelta(hours=1, seconds=5)], np.array([0.0]))
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


def test_count_backfill_tiles_and_is_idempotent(store: Store, rng: np.random.Generator) -> None:
    _history(store, rng)
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


def test_backfill_by_tag_stores_segment_and_version(store: Store, rng: np.random.Generator) -> None:
    register_baseline(store, "m", pd.DataFrame({"x": rng.normal(0, 1, 1500)}))
    n = 1200
    ts = [T0 + timedelta(seconds=6 * i) for i in range(n)]  # 2 h
    x = np.where(np.arange(n) % 2 == 0, rng.normal(0, 1, n), rng.normal(2, 1, n))
    _put(store, ts, x, [{"tenant": "a"}, {"tenant": "b"}] * (n // 2))
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


def test_backfill_of_drift_only(store: Store, rng: np.random.Generator) -> None:
    _history(store, rng)
    done = backfill(store, "m", T0, T0 + timedelta(hours=4), every="1h", detectors=False)
    assert len(done.runs) == 3 and done.detections == ()
    assert len(_stored(store)) == 3 and _stored_others(store) == {}


def test_run_ids_are_deterministic_and_a_stored_run_is_kept_once(
    store: Store, rng: np.random.Generator
) -> None:
    baseline, _ = _history(store, rng)
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


def test_migration_8_keeps_old_drift_rows_valid(tmp_path: Any) -> None:
    old = EmbeddedStore(tmp_path / "old")
    try:
        old.command(
            "CREATE TABLE schema_migrations (version UInt32, name String, applied_at "
            "DateTime64(3, 'UTC') DEFAULT now64(3)) ENGINE = ReplacingMergeTree ORDER BY version"
        )
        for migration in MIGRATIONS:
            if migration.version < 8:
                for statement in migration.statements:
                    old.command(statement)
                old.command(
                    "INSERT INTO schema_migrations (version, name) VALUES ({v:UInt32}, '')",
                    {"v": migration.version},
                )
        old.command(
            "INSERT INTO drift_results (project, model, run_id, window_start, window_end, "
            "baseline_id, feature, kind, method, score, threshold, drifted, n_reference, "
            "n_current, computed_at) VALUES ('default', 'm', 'r', '2026-01-01', "
            "'2026-01-02', 'b', 'x', 'numeric', 'psi', 0.1, 0.2, 0, 10, 10, now64(3))"
        )
        assert 8 in migrate(old)
        assert migrate(old) == []  # idempotent
        rows = old.query(
            "SELECT run_id, version, slot, segment, window_kind, window_count FROM drift_results"
        ).to_pylist()
        assert rows == [
            {
                "run_id": "r",
                "version": "",
                "slot": "",
                "segment": "",
                "window_kind": "time",
                "window_count": 0,
            }
        ]
    finally:
        old.close()
