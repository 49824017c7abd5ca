"""Calibrated thresholds: leave-one-chunk-out keeps false alarms near the chosen quantile."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from keelwatch.detectors import (
    DriftConfig,
    as_feature_thresholds,
    calibrate_thresholds,
    register_baseline,
    run_drift,
)
from keelwatch.store import Store


def wasserstein_normed(ref: np.ndarray, cur: np.ndarray, std: float) -> float:
    return float(stats.wasserstein_distance(ref, cur) / max(std, 0.001))


def test_calibrated_thresholds(store: Store, rng: np.random.Generator, insert: Any) -> None:
    n, size = 12_000, 400
    ref = pd.DataFrame(
        {"x": rng.normal(size=n), "c": rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])}
    )
    baseline = register_baseline(store, "m", ref)
    calibrated = calibrate_thresholds(store, baseline, chunks=25, chunk_rows=size)
    by_feature = {(c.feature, c.method): c for c in calibrated}
    x = by_feature[("x", "wasserstein")]
    assert len(x.scores) == 25 and x.chunk_rows == size
    # Chunk 0 against the rest, recomputed with numpy/SciPy.
    chunk, rest = ref["x"].to_numpy()[:size], ref["x"].to_numpy()[size:]
    assert x.scores[0] == pytest.approx(wasserstein_normed(rest, chunk, ref["x"].std(ddof=0)))
    assert ("c", "jensen_shannon") in by_feature
    # Windows of the calibrated size without drift rarely alarm; a real shift does.
    config = DriftConfig(feature_thresholds=as_feature_thresholds(calibrated), min_samples=10)
    start = pd.Timestamp("2026-01-01", tz="UTC").to_pydatetime()
    alarms = 0
    windows = 12
    for i in range(windows):
        fresh = pd.DataFrame(
            {"x": rng.normal(size=size), "c": rng.choice(["a", "b", "c"], size, p=[0.5, 0.3, 0.2])}
        )
        window = insert(store, "m", fresh, start=start + timedelta(hours=i))
        run = run_drift(store, baseline, window, config)
        alarms += run.result("x", "wasserstein").drifted
    assert alarms <= 3  # expected 0.6 at the 95th percentile
    shifted = pd.DataFrame({"x": rng.normal(0.5, 1.0, size=size), "c": ["a"] * size})
    window = insert(store, "m", shifted, start=start + timedelta(days=2))
    run = run_drift(store, baseline, window, config)
    assert run.result("x", "wasserstein").drifted and run.result("c", "jensen_shannon").drifted


def test_in_sample_chunks_give_tighter_thresholds(rng: np.random.Generator) -> None:
    """NannyML #426: scoring chunks against a reference that contains them biases low."""
    values = rng.normal(size=4000)
    chunks = np.split(values, 10)
    std = values.std()
    inside = [wasserstein_normed(values, c, std) for c in chunks]
    left_out = [
        wasserstein_normed(np.concatenate(chunks[:i] + chunks[i + 1 :]), c, std)
        for i, c in enumerate(chunks)
    ]
    assert np.mean(inside) < np.mean(left_out)
