"""Volume, freshness, wrong types and label coverage/delay, against numpy on the same data."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from keelwatch.detectors import (
    Window,
    classification,
    labels,
    quality,
    register_baseline,
    regression,
)
from keelwatch.store import Store

START = datetime(2026, 1, 1, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)


def _hours(store: Store, insert: Any, counts: dict[int, int], **columns: Any) -> None:
    """``counts[h]`` predictions at the start of hour ``h`` after ``START``."""
    for h, n in counts.items():
        extra = {k: [v] * n for k, v in columns.items()}
        if "tags" in columns:
            tags = [list(columns["tags"].items())] * n
            extra["tags"] = pa.array(tags, pa.map_(pa.string(), pa.string()))
        insert(store, "m", pd.DataFrame({"x": np.zeros(n)}), start=START + h * HOUR, **extra)


def _oracle(history: np.ndarray, current: int) -> tuple[float, float, float]:
    had = history[history > 0]
    mean, std = had.mean(), had.std(ddof=1)
    return mean, std, (current - mean) / std


@pytest.fixture
def baseline(store: Store) -> Any:
    return register_baseline(store, "m", pd.DataFrame({"x": np.linspace(0, 1, 50)}))


def test_volume_spike_against_history(
    store: Store, rng: np.random.Generator, insert: Any, baseline: Any
) -> None:
    history = rng.poisson(100, 10)
    # Hour 10 is normal, hour 11 a 5x spike; hour 11's history is hours 0..10.
    counts = {h: int(c) for h, c in enumerate(history)} | {10: 100, 11: 500}
    _hours(store, insert, counts)
    normal = quality(store, baseline, Window("m", START + 10 * HOUR, START + 11 * HOUR))
    v = normal.volume
    assert v is not None and v.current == 100 and v.history == 10
    mean, std, z = _oracle(history, 100)
    assert (v.expected, v.std, v.z) == pytest.approx((mean, std, z), rel=1e-12)
    assert not v.anomaly
    spike = quality(store, baseline, Window("m", START + 11 * HOUR, START + 12 * HOUR))
    s = spike.volume
    assert s is not None and s.current == 500
    mean, std, z = _oracle(np.array([*history, 100]), 500)
    assert (s.expected, s.std, s.z) == pytest.approx((mean, std, z), rel=1e-12)
    assert s.z is not None and s.z >= 3 and s.anomaly
    # history=4 reads only hours 7..10.
    short = quality(
        store, baseline, Window("m", START + 11 * HOUR, START + 12 * HOUR), history=4
    ).volume
    assert short is not None and short.history == 4
    assert short.expected == pytest.approx(np.mean([*history[7:], 100]), rel=1e-12)
    # Too little history: the same spike is not flagged.
    few = quality(
        store, baseline, Window("m", START + 11 * HOUR, START + 12 * HOUR), min_history=12
    ).volume
    assert few is not None and few.history == 11 and not few.anomaly


def test_volume_after_a_gap_and_without_history(
    store: Store, rng: np.random.Generator, insert: Any, baseline: Any
) -> None:
    before = rng.poisson(200, 6)
    # Hours 0..5 have data, 6..9 none (an outage), hour 10 is back to normal.
    _hours(store, insert, {h: int(c) for h, c in enumerate(before)} | {10: 210})
    window = Window("m", START + 10 * HOUR, START + 11 * HOUR)
    v = quality(store, baseline, window).volume
    assert v is not None and v.history == 6
    mean, std, z = _oracle(np.array([*before, 0, 0, 0, 0]), 210)  # empty windows left out
    assert (v.expected, v.std, v.z) == pytest.approx((mean, std, z), rel=1e-12)
    assert not v.anomaly
    # The outage itself: a window with no prediction, far below its history.
    outage = quality(store, baseline, Window("m", START + 7 * HOUR, START + 8 * HOUR)).volume
    assert outage is not None and outage.current == 0 and outage.anomaly
    mean, std, z = _oracle(before, 0)
    assert outage.z == pytest.approx(z, rel=1e-12)
    first = quality(store, baseline, Window("m", START, START + HOUR)).volume
    assert first == type(first)(int(before[0]), None, None, None, 0, False)
    # A window of N predictions has its size fixed: no volume check.
    counted = Window("m", START + 10 * HOUR, START + 11 * HOUR, count=50)
    assert quality(store, baseline, counted).volume is None


def test_volume_of_a_segment_reads_the_raw_rows(
    store: Store, rng: np.random.Generator, insert: Any, baseline: Any
) -> None:
    eu = rng.poisson(50, 8)
    us = rng.poisson(400, 8)
    eu_tags, us_tags = {"region": "eu"}, {"region": "us"}
    _hours(store, insert, {h: int(c) for h, c in enumerate(eu)} | {8: 250}, tags=eu_tags)
    _hours(store, insert, {h: int(c) for h, c in enumerate(us)} | {8: 400}, tags=us_tags)
    window = Window("m", START + 8 * HOUR, START + 9 * HOUR, segment=(("region", "eu"),))
    v = quality(store, baseline, window).volume
    assert v is not None and v.current == 250 and v.history == 8
    mean, std, z = _oracle(eu, 250)
    assert (v.expected, v.std, v.z) == pytest.approx((mean, std, z), rel=1e-12)
    assert v.anomaly
    whole = quality(store, baseline, Window("m", START + 8 * HOUR, START + 9 * HOUR)).volume
    assert whole is not None and whole.expected == pytest.approx(np.mean(eu + us), rel=1e-12)


def test_constant_history_and_bad_arguments(store: Store, insert: Any, baseline: Any) -> None:
    _hours(store, insert, {0: 30, 1: 30, 2: 30, 3: 30, 4: 30, 5: 30, 6: 30, 7: 31})
    same = quality(store, baseline, Window("m", START + 6 * HOUR, START + 7 * HOUR)).volume
    assert same is not None and same.std == 0 and same.z == 0 and not same.anomaly
    off = quality(store, baseline, Window("m", START + 7 * HOUR, START + 8 * HOUR)).volume
    assert off is not None and off.z == np.inf and off.anomaly
    window = Window("m", START, START + HOUR)
    with pytest.raises(ValueError, match="history"):
        quality(store, baseline, window, history=0)
    with pytest.raises(ValueError, match="min_history"):
        quality(store, baseline, window, min_history=-1)
    with pytest.raises(ValueError, match="max_staleness_s"):
        quality(store, baseline, window, max_staleness_s=0)
    with pytest.raises(ValueError, match="window"):
        quality(store, baseline, Window("m", START, START))


def test_freshness(store: Store, insert: Any, baseline: Any) -> None:
    empty = quality(store, baseline, Window("m", START, START + HOUR)).freshness
    assert empty is not None and empty.stale and empty.last_prediction is None
    assert empty.max_staleness_s == 3600.0
    _hours(store, insert, {0: 20, 5: 10})  # last of hour 0 at 19 ms
    window = Window("m", START + 2 * HOUR, START + 3 * HOUR)
    f = quality(store, baseline, window).freshness
    assert f is not None and f.last_prediction == START + timedelta(milliseconds=19)
    assert f.staleness_s == pytest.approx(3 * 3600 - 0.019, abs=1e-9)
    assert f.stale  # older than the window's length
    relaxed = quality(store, baseline, window, max_staleness_s=4 * 3600).freshness
    assert relaxed is not None and not relaxed.stale and relaxed.max_staleness_s == 4 * 3600
    # Predictions after the window's end do not make it fresh; a version narrows it.
    insert(store, "m", pd.DataFrame({"x": [0.5]}), start=START + HOUR, version="v2")
    other = quality(store, baseline, Window("m", window.start, window.end, version="v1"))
    assert other.freshness is not None and other.freshness.last_prediction is None
    v2 = quality(store, baseline, Window("m", window.start, window.end, version="v2"))
    assert v2.freshness is not None and v2.freshness.staleness_s == pytest.approx(7200.0)
    assert v2.freshness.stale


def test_wrong_types(store: Store, insert: Any) -> None:
    ref = pd.DataFrame({"x": np.linspace(0, 1, 50), "c": ["a", "b"] * 25})
    baseline = register_baseline(store, "m", ref)
    insert(store, "m", pd.DataFrame({"x": np.full(30, 0.5), "c": ["a"] * 30}))
    # A client that sends x as text and c as a number: each lands in the other map.
    later = START + timedelta(seconds=1)
    insert(store, "m", pd.DataFrame({"x": ["0.5"] * 7, "c": np.ones(7)}), start=later)
    insert(store, "m", pd.DataFrame({"c": np.full(3, np.nan)}), start=later + HOUR / 2)
    q = quality(store, baseline, Window("m", START, START + HOUR))
    by = {f.feature: f for f in q.features}
    assert q.wrong_types == ("x", "c")  # baseline order
    assert by["x"].wrong_type == 7 and by["x"].present == 30
    # The non-finite numbers were not stored in the map; only the 7 finite ones arrived.
    assert by["c"].wrong_type == 7 and by["c"].present == 30
    assert q.missing_features == () and q.unexpected_features == ()
    clean = quality(store, baseline, Window("m", START, later))
    assert clean.wrong_types == () and all(f.wrong_type == 0 for f in clean.features)


def _outcomes(store: Store, ids: list[str], ts: pd.DatetimeIndex, **cols: Any) -> None:
    n = len(ids)
    store.insert(
        "outcomes",
        pa.table(
            {
                "project": ["default"] * n,
                "model": ["m"] * n,
                "prediction_id": ids,
                "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
                "label": cols.get("label", [""] * n),
                "value": pa.array(cols.get("value", [None] * n), pa.float64()),
            }
        ),
    )


def test_label_coverage_and_delay(store: Store, rng: np.random.Generator, insert: Any) -> None:
    n = 500
    ids = [f"id{i}" for i in range(n)]
    score = rng.uniform(size=n)
    window = insert(
        store,
        "m",
        pd.DataFrame({"x": np.zeros(n)}),
        prediction_id=ids,
        out_label=np.where(score > 0.5, "1", "0").tolist(),
        out_value=score.tolist(),
    )
    predicted_at = pd.date_range(START, periods=n, freq="1ms", tz="UTC")
    labelled = rng.permutation(n)[:200]  # 40% of the window gets an outcome
    delay_ms = np.round(rng.exponential(3 * 3600 * 1000, labelled.size)).astype(np.int64)
    delay_s = delay_ms / 1000
    label_ts = predicted_at[labelled] + pd.to_timedelta(delay_ms, unit="ms")
    y = (rng.uniform(size=labelled.size) < score[labelled]).astype(int)
    _outcomes(store, [ids[i] for i in labelled], label_ts, label=[str(v) for v in y])
    # A correction a day later is the newest outcome, but the label was first known earlier.
    _outcomes(store, [ids[labelled[0]]], label_ts[:1] + pd.Timedelta(days=1), label=[str(1 - y[0])])
    # An outcome for an id outside the window.
    _outcomes(store, ["elsewhere"], predicted_at[:1])
    found = labels(store, window)
    assert (found.predictions, found.labelled) == (n, 200)
    assert found.coverage == pytest.approx(0.4)
    expected = np.percentile(delay_s, [50, 90])
    assert [found.delay_p50_s, found.delay_p90_s] == pytest.approx(expected, abs=1e-6)
    c = classification(store, window)
    assert c is not None and c.n == 200 and c.labels == found
    # Outcome values: regression carries the same coverage, now one prediction more.
    assert regression(store, window) is None
    other = next(i for i in range(n) if i not in set(labelled))
    _outcomes(store, [ids[other]], predicted_at[other : other + 1], value=[0.3])
    r = regression(store, window)
    assert r is not None and r.n == 1 and r.labels == labels(store, window)
    assert r.labels is not None and r.labels.labelled == 201


def test_labels_of_an_unlabelled_or_empty_window(store: Store, insert: Any) -> None:
    window = insert(store, "m", pd.DataFrame({"x": np.zeros(10)}))
    assert labels(store, window) == type(labels(store, window))(10, 0, 0.0, None, None)
    empty = Window("m", START - HOUR, START)
    assert labels(store, empty).coverage == 0.0


def test_numeric_stats_over_two_key_layouts(
    store: Store, rng: np.random.Generator, insert: Any
) -> None:
    ref = pd.DataFrame({"x": rng.uniform(0, 1, 200), "k": rng.normal(size=200), "z": 1.0})
    baseline = register_baseline(store, "m", ref)
    # The usual layout (x, k, z), then the same keys in another order and a third layout with an
    # extra key: each feature's counts are summed over the layouts, "constant" holds only when
    # every layout saw one and the same value.
    parts = [
        pd.DataFrame({"x": rng.uniform(-0.2, 1.2, 300), "k": 2.0, "z": 1.0}),
        pd.DataFrame({"z": 3.0, "k": 2.0, "x": rng.uniform(0.5, 1.5, 120)}),
        pd.DataFrame({"k": np.full(40, 2.0), "x": rng.uniform(0, 1, 40), "e": 5.0}),
    ]
    for i, part in enumerate(parts):
        insert(store, "m", part, start=START + i * timedelta(seconds=1))
    q = quality(store, baseline, Window("m", START, START + HOUR))
    by = {f.feature: f for f in q.features}
    x = np.concatenate([p["x"].to_numpy() for p in parts])
    assert q.rows == 460 and by["x"].present == 460
    lo, hi = ref["x"].min(), ref["x"].max()
    assert by["x"].out_of_range_share == pytest.approx(np.mean((x < lo) | (x > hi)), rel=1e-12)
    assert by["k"].constant and not by["x"].constant and not by["z"].constant
    assert by["z"].present == 420 and by["z"].missing_rate == pytest.approx(40 / 460)
    assert q.unexpected_features == ("e",)
    # One layout only: z is constant there.
    first = quality(store, baseline, Window("m", START, START + timedelta(seconds=1)))
    assert {f.feature for f in first.features if f.constant} == {"k", "z"}
