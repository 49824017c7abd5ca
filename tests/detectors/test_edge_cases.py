"""Edge cases of drift runs, and store migration 2 (numeric baseline values in long form)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from keelwatch.detectors import DriftConfig, register_baseline, run_drift
from keelwatch.store import MIGRATIONS, Store

METHODS = ("wasserstein", "ks", "psi", "jensen_shannon", "hellinger")


def test_identical_constant_feature(store: Store, insert: Any) -> None:
    baseline = register_baseline(store, "m", pd.DataFrame({"k": np.full(300, 2.0)}))
    window = insert(store, "m", pd.DataFrame({"k": np.full(200, 2.0)}))
    for compat in ("keelwatch", "evidently", "nannyml"):
        run = run_drift(
            store, baseline, window, DriftConfig(numeric_methods=METHODS, compat=compat)
        )
        assert run.result("k", "wasserstein").score == 0.0
        ks = run.result("k", "ks")
        assert ks.score == 0.0 and ks.p_value == pytest.approx(1.0)
        assert run.result("k", "psi").score == pytest.approx(0.0, abs=1e-12)
        assert not run.drifted_features


def test_feature_absent_from_window(store: Store, rng: np.random.Generator, insert: Any) -> None:
    ref = pd.DataFrame({"a": rng.normal(size=300), "c": rng.choice(["x", "y"], 300)})
    baseline = register_baseline(store, "m", ref)
    window = insert(store, "m", pd.DataFrame({"b": rng.normal(size=100)}))
    run = run_drift(store, baseline, window)
    assert run.n_current == 100
    assert not run.drifted_features  # nothing to compare is not drift
    assert all(math.isnan(r.score) for r in run.results)


def test_migration_backfills_baseline_values(store: Store) -> None:
    values = np.array([[1.0, 2.0], [3.0, np.inf]])
    keys = pa.array(["a", "b", "a", "b"])
    store.insert(
        "baseline_rows",
        pa.table(
            {
                "baseline_id": ["old", "old"],
                "row": pa.array([0, 1], pa.uint64()),
                "num": pa.MapArray.from_arrays(
                    pa.array([0, 2, 4], pa.int32()), keys, pa.array(values.ravel())
                ),
                "cat": pa.array([[], []], pa.map_(pa.string(), pa.string())),
            }
        ),
    )
    backfill = next(m for m in MIGRATIONS if m.version == 2).statements[-1]
    store.command(backfill)
    store.command(backfill)  # idempotent: the baseline is already there
    rows = store.query(
        "SELECT feature, row, value FROM baseline_values WHERE baseline_id = 'old' "
        "ORDER BY feature, row"
    ).to_pylist()
    assert [(r["feature"], r["row"], r["value"]) for r in rows] == [
        ("a", 0, 1.0),
        ("a", 1, 3.0),
        ("b", 0, 2.0),  # b's infinite value in row 1 is dropped
    ]
