"""Windows by tag segment and by prediction count, and backfill over history."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy.stats import wasserstein_distance

from keelwatch.detectors import (
    Window,
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
from keelwatch.detectors._windows import (
    count_windows,
    latest_count_window,
    parse_every,
    segment_values,
    segment_windows,
    time_windows,
)
from keelwatch.store import EmbeddedStore, Store, migrate
from keelwatch.store._schema import MIGRATIONS

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


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


def test_segment_filter_restricts_rows(store: Store, put: Any) -> None:
    # Hand-counted: 6 acme/eu, 3 acme/us, 4 beta/eu, 2 with no tenant, 1 tricky value.
    tags = (
        [{"tenant": "acme", "region": "eu"}] * 6
        + [{"tenant": "acme", "region": "us"}] * 3
        + [{"tenant": "beta", "region": "eu"}] * 4
        + [{"region": "eu"}] * 2
        + [{"tenant": "o'brien, inc"}]
    )
    put(store, _ms(*range(len(tags))), tags=tags)
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


def test_drift_is_flagged_only_in_the_shifted_segment(store: Store, put: Any) -> None:
    rng = np.random.default_rng(7)
    reference = rng.normal(0, 1, 2000)
    baseline = register_baseline(store, "m", pd.DataFrame({"x": reference}))
    same, shifted = rng.normal(0, 1, 400), rng.normal(1.0, 1, 400)
    x = np.empty(800)
    x[0::2], x[1::2] = same, shifted  # interleaved in time: only the tag tells them apart
    put(store, _ms(*range(800)), x, [{"tenant": "a"}, {"tenant": "b"}] * 400)
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


def test_count_windows_hold_exactly_n_with_distinct_timestamps(store: Store, put: Any) -> None:
    put(store, _ms(*range(1000)), np.arange(1000.0))
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


def test_count_windows_tie_rule(store: Store, put: Any) -> None:
    # Sorted rows 0..9 at ms [0, 1, 1, 1, 2, 3, 3, 4, 5, 6]. N = 3 puts boundaries at the
    # timestamps of rows 3, 6 and 9 (1, 3 and 6 ms); every row stamped on a boundary goes to
    # the window starting there: sizes 1, 4, 4, 1.
    put(store, _ms(0, 1, 1, 1, 2, 3, 3, 4, 5, 6))
    whole = Window("m", T0, T0 + timedelta(seconds=1))
    windows = count_windows(store, whole, 3)
    assert [w.start for w in windows] == [T0, *_ms(1, 3, 6)]
    assert [_count(store, w) for w in windows] == [1, 4, 4, 1]
    # More rows on one timestamp than N: no empty window, the boundary is used once.
    assert [_count(store, w) for w in count_windows(store, whole, 2)] == [1, 3, 1, 3, 2]
    # The 3 latest are rows at 4, 5, 6 ms; the 4th latest is stamped 3 ms, shared with row 5.
    assert _count(store, latest_count_window(store, whole, 3)) == 3
    assert _count(store, latest_count_window(store, whole, 4)) == 5


def test_a_prediction_on_a_boundary_microsecond_is_in_the_later_window(
    store: Store, put: Any
) -> None:
    edge = T0 + timedelta(microseconds=123_457)
    put(store, [edge - timedelta(microseconds=1), edge, edge + timedelta(microseconds=1)])
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
