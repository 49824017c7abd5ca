"""Exact W1 and KS from the store against SciPy, over the shapes the quantile formula splits on."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from keelwatch.detectors import Window, register_baseline
from keelwatch.detectors._ecdf import ecdf_pass
from keelwatch.detectors._profile import QUANTILES
from keelwatch.detectors._sql import FEW_VALUES_CAP
from keelwatch.store import Store

# (reference size, current size): equal (the L1 branch), co-prime, one side a multiple of the
# other, a window far smaller than the baseline and one far larger, single values; for W1 also
# each side at least twice the other, not a multiple (the branch that expands the smaller side
# and corrects the straddling pieces), and less than twice (the general branch).
SIZES = [
    (500, 500),
    (701, 389),
    (300, 900),
    (2000, 7),
    (13, 1500),
    (1, 1),
    (1, 4),
    (1000, 333),
    (5, 5),
    (450, 1000),
    (20, 3),
    (600, 1000),
    (64, 16),
    (999, 1000),
]


def test_wasserstein_and_ks_match_scipy_for_any_sizes(
    store: Store, rng: np.random.Generator, insert: Any
) -> None:
    ref_columns: dict[str, np.ndarray] = {}
    cur_columns: dict[str, np.ndarray] = {}
    longest = max(max(s) for s in SIZES)
    for k, (n, m) in enumerate(SIZES):
        # Continuous values for some shapes, heavy ties (few integers) for the others.
        ties = k % 4 in (1, 2)
        a = rng.integers(0, 6, n).astype(float) if ties else rng.normal(size=n)
        b = rng.integers(2, 9, m).astype(float) if ties else rng.normal(0.4, 1.3, m)
        ref_columns[f"f{k}"] = np.pad(a, (0, longest - n), constant_values=np.nan)
        cur_columns[f"f{k}"] = np.pad(b, (0, longest - m), constant_values=np.nan)
    baseline = register_baseline(store, "m", pd.DataFrame(ref_columns))
    window = insert(store, "m", pd.DataFrame(cur_columns))
    names = list(ref_columns)
    ks = set(names[::2])
    stored = store.query(
        "SELECT feature, length(sorted_values) AS n FROM baseline_sorted "
        "WHERE baseline_id = {b:String}",
        {"b": baseline.baseline_id},
    ).to_pylist()
    assert {r["feature"]: r["n"] for r in stored} == {
        n: s[0] for n, s in zip(names, SIZES, strict=True)
    }
    for name in names:  # profile quantiles are quantileExact's element, ⌊level·n⌋ (0-based)
        a = np.sort(ref_columns[name][np.isfinite(ref_columns[name])])
        expected = tuple(float(a[int(level * a.size)]) for level in QUANTILES)
        assert baseline.feature(name).quantiles == expected
    _check(store, window, baseline.baseline_id, ref_columns, cur_columns, ks)
    # A baseline registered before baseline_sorted existed is read from baseline_values.
    store.command("TRUNCATE TABLE baseline_sorted")
    _check(store, window, baseline.baseline_id, ref_columns, cur_columns, ks)


def _check(
    store: Store,
    window: Window,
    baseline_id: str,
    ref_columns: dict[str, np.ndarray],
    cur_columns: dict[str, np.ndarray],
    ks: set[str],
) -> None:
    names = list(ref_columns)
    # All features in one grouped query, then one query each; each with the reference's and
    # then the window's values held in the join (the same numbers either way).
    for budget, small in ((10**9, False), (1, False), (10**9, True), (1, True)):
        found = ecdf_pass(
            store, window, baseline_id, names, budget=budget, ks=ks, small_window=small
        ).distances
        for name in names:
            a = ref_columns[name][np.isfinite(ref_columns[name])]
            b = cur_columns[name][np.isfinite(cur_columns[name])]
            got = found[name]
            assert (got.n_ref, got.n_cur) == (a.size, b.size)
            expected = stats.wasserstein_distance(a, b)
            assert got.wasserstein == pytest.approx(expected, rel=1e-12, abs=1e-14), name
            if name in ks:
                assert got.ks_d == pytest.approx(stats.ks_2samp(a, b).statistic, abs=1e-12)
                assert got.ks_ref_below is not None and got.ks_cur_below is not None
                d = abs(got.ks_ref_below / a.size - got.ks_cur_below / b.size)
                assert d == pytest.approx(got.ks_d, abs=1e-12)
            else:
                assert got.ks_d is None


def test_feature_empty_on_one_side_is_left_out(
    store: Store, rng: np.random.Generator, insert: Any
) -> None:
    ref = pd.DataFrame({"a": rng.normal(size=50), "b": rng.normal(size=50)})
    cur = pd.DataFrame({"a": rng.normal(size=30)})
    baseline = register_baseline(store, "m", ref)
    window = insert(store, "m", cur)
    for budget in (10**9, 1):
        found = ecdf_pass(store, window, baseline.baseline_id, ["a", "b"], budget=budget).distances
        assert set(found) == {"a"}
        expected = stats.wasserstein_distance(ref["a"], cur["a"])
        assert found["a"].wasserstein == pytest.approx(expected, rel=1e-12)


def test_counted_features_get_exact_window_value_counts(
    store: Store, rng: np.random.Generator, insert: Any
) -> None:
    ref = pd.DataFrame(
        {
            "a": rng.normal(size=400),
            "b": rng.normal(size=400),
            "four": rng.integers(0, 4, 400).astype(float),
            "five": rng.integers(0, 5, 400).astype(float),
            "wide": rng.integers(0, 3, 400).astype(float),
        }
    )
    cur = pd.DataFrame(
        {
            "a": rng.normal(size=300),
            "b": rng.normal(size=300),
            "four": rng.integers(0, 4, 300).astype(float),
            "five": np.where(rng.random(300) < 0.1, np.nan, rng.integers(1, 6, 300)),
            "wide": rng.normal(size=300),  # more values than the cap: not counted
        }
    )
    baseline = register_baseline(store, "m", ref)
    window = insert(store, "m", cur)
    counted = ["four", "five", "wide"]

    def expected(name: str) -> dict[float, int] | None:
        values = cur[name].dropna()
        if values.nunique() > FEW_VALUES_CAP:
            return None
        return {float(k): int(v) for k, v in values.value_counts().items()}

    # "five" is counted and measured; "four" and "wide" only counted (no values held).
    for budget, small in ((10**9, False), (1, False), (10**9, True)):
        found = ecdf_pass(
            store,
            window,
            baseline.baseline_id,
            ["a", "b", "five"],
            budget=budget,
            counted=counted,
            small_window=small,
        )
        assert set(found.distances) == {"a", "b", "five"}
        assert found.window_counts == {name: expected(name) for name in counted}
        five = cur["five"].dropna()
        assert found.distances["five"].wasserstein == pytest.approx(
            stats.wasserstein_distance(ref["five"], five), rel=1e-12
        )
    # Only counted features, then a baseline without presorted values: their own read.
    found = ecdf_pass(store, window, baseline.baseline_id, [], counted=counted)
    assert found.distances == {}
    assert found.window_counts == {name: expected(name) for name in counted}
    store.command("TRUNCATE TABLE baseline_sorted")
    found = ecdf_pass(store, window, baseline.baseline_id, ["a"], counted=counted)
    assert set(found.distances) == {"a"}
    assert found.window_counts == {name: expected(name) for name in counted}
