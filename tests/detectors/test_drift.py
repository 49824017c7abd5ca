"""Drift runs through the store against SciPy on the same data."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial import distance

from keelwatch.detectors import (
    DriftConfig,
    get_baseline,
    jensen_shannon,
    psi,
    register_baseline,
    run_drift,
    store_run,
)
from keelwatch.store import Store

ALL_NUMERIC = ("wasserstein", "ks", "psi", "kl_div", "jensen_shannon", "hellinger", "chi_square")


def _frames(rng: np.random.Generator, n_ref: int, n_cur: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    ref = pd.DataFrame(
        {
            "x": rng.normal(size=n_ref),
            "ties": rng.integers(0, 40, n_ref).astype(float),
            "color": rng.choice(["red", "green", "blue"], n_ref, p=[0.5, 0.3, 0.2]),
        }
    )
    cur = pd.DataFrame(
        {
            "x": rng.normal(0.3, 1.2, size=n_cur),
            "ties": rng.integers(5, 45, n_cur).astype(float),
            "color": rng.choice(["red", "green", "blue", "pink"], n_cur, p=[0.3, 0.3, 0.3, 0.1]),
        }
    )
    return ref, cur


def test_exact_ecdf_methods_match_scipy(
    store: Store, rng: np.random.Generator, insert: Any
) -> None:
    ref, cur = _frames(rng, 3000, 2000)
    ref.loc[5, "x"] = np.nan  # dropped on both sides, as the peers do
    baseline = register_baseline(store, "m", ref)
    window = insert(store, "m", cur)
    run = run_drift(store, baseline, window, DriftConfig(numeric_methods=ALL_NUMERIC))
    for feature in ("x", "ties"):
        a = ref[feature].dropna().to_numpy()
        b = cur[feature].to_numpy()
        w = run.result(feature, "wasserstein")
        assert w.score == pytest.approx(
            stats.wasserstein_distance(a, b) / np.std(a), rel=1e-9, abs=1e-12
        )
        assert (w.n_reference, w.n_current) == (a.size, b.size)
        ks = run.result(feature, "ks")
        expected = stats.ks_2samp(a, b)
        assert ks.score == pytest.approx(expected.statistic, abs=1e-12)
        assert ks.p_value == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)
    assert run.result("x", "wasserstein").deciding
    assert not run.result("x", "ks").deciding


def test_binned_methods_on_baseline_bins(
    store: Store, rng: np.random.Generator, insert: Any
) -> None:
    ref, cur = _frames(rng, 2000, 1500)
    baseline = register_baseline(store, "m", ref)
    window = insert(store, "m", cur)
    run = run_drift(store, baseline, window, DriftConfig(numeric_methods=ALL_NUMERIC))
    edges = np.histogram_bin_edges(ref["x"], "sturges")
    ref_counts = np.histogram(ref["x"], edges)[0]
    clipped = np.clip(cur["x"], edges[0], edges[-1])  # outside values go to the edge bins
    cur_counts = np.histogram(clipped, edges)[0]
    assert run.result("x", "psi").score == pytest.approx(psi(ref_counts, cur_counts), abs=1e-12)
    js = distance.jensenshannon(ref_counts / ref_counts.sum(), cur_counts / cur_counts.sum())
    assert run.result("x", "jensen_shannon").score == pytest.approx(js, abs=1e-12)
    table = np.vstack([ref_counts, cur_counts])
    chi = stats.chi2_contingency(table[:, table.sum(axis=0) > 0], correction=False)
    assert run.result("x", "chi_square").p_value == pytest.approx(chi.pvalue, rel=1e-9)


def test_categorical_methods(store: Store, rng: np.random.Generator, insert: Any) -> None:
    ref, cur = _frames(rng, 2000, 1500)
    baseline = register_baseline(store, "m", ref)
    window = insert(store, "m", cur)
    run = run_drift(store, baseline, window)
    keys = sorted(set(ref["color"]) | set(cur["color"]))
    r = ref["color"].value_counts().reindex(keys, fill_value=0).to_numpy()
    c = cur["color"].value_counts().reindex(keys, fill_value=0).to_numpy()
    result = run.result("color", "jensen_shannon")
    assert result.score == pytest.approx(jensen_shannon(r, c), abs=1e-12)
    assert result.deciding and result.drifted
    chi = run.result("color", "chi_square")
    expected = stats.chi2_contingency(np.vstack([r, c]), correction=False)
    assert chi.p_value == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)


def test_no_drift_and_shift_detected(store: Store, rng: np.random.Generator, insert: Any) -> None:
    ref = pd.DataFrame({"a": rng.normal(size=4000), "b": rng.normal(size=4000)})
    baseline = register_baseline(store, "m", ref)
    cur = pd.DataFrame({"a": rng.normal(size=3000), "b": rng.normal(1.0, 1.0, size=3000)})
    window = insert(store, "m", cur)
    run = run_drift(store, baseline, window)
    assert [r.feature for r in run.drifted_features] == ["b"]
    assert run.drift_share == 0.5 and run.dataset_drift
    store_run(store, run)
    stored = store.query(
        "SELECT count() AS n FROM drift_results WHERE run_id = {r:String}", {"r": run.run_id}
    ).to_pylist()
    assert stored[0]["n"] == len(run.results)


def test_window_filters_version_and_slot(
    store: Store, rng: np.random.Generator, insert: Any
) -> None:
    ref = pd.DataFrame({"a": rng.normal(size=500)})
    register_baseline(store, "m", ref)
    baseline = get_baseline(store, "m")
    assert baseline is not None and baseline.feature("a").distinct == 21
    insert(store, "m", pd.DataFrame({"a": rng.normal(5, 1, 300)}), version="v2")
    window = insert(store, "m", pd.DataFrame({"a": rng.normal(size=200)}), version="v1")
    run = run_drift(store, baseline, window)
    assert run.n_current == 200
    assert run.result("a", "wasserstein").score < 0.3  # the shifted v2 rows are not in it


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="unknown drift method"):
        DriftConfig(numeric_methods=("energy",))
    with pytest.raises(ValueError, match="categorical"):
        DriftConfig(categorical_methods=("ks",))
    with pytest.raises(ValueError, match="compat"):
        DriftConfig(compat="alibi")
