"""Large-window numeric drift from fine histograms, against SciPy and the exact path."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from keelwatch.detectors import DriftConfig, quality, register_baseline, run_drift
from keelwatch.detectors._grid import grid_counts
from keelwatch.store import Store, StoreError

METHODS = ("wasserstein", "ks", "psi", "jensen_shannon", "hellinger", "kl_div", "chi_square")


def _data(rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    ref = pd.DataFrame(
        {
            "x": rng.normal(size=4000),
            "skewed": rng.lognormal(0.0, 1.0, 4000),
            "ties": rng.integers(0, 30, 4000).astype(float),
        }
    )
    # Current values beyond both ends of the reference's range test the exact tail terms.
    cur = pd.DataFrame(
        {
            "x": rng.normal(0.4, 1.6, size=9000),
            "skewed": rng.lognormal(0.2, 1.2, 9000),
            "ties": rng.integers(-5, 40, 9000).astype(float),
        }
    )
    return ref, cur


@pytest.fixture
def drift_pair(store: Store, rng: np.random.Generator, insert: Any) -> tuple[Any, ...]:
    ref, cur = _data(rng)
    baseline = register_baseline(store, "grid", ref)
    window = insert(store, "grid", cur)
    return baseline, window, ref, cur


def test_grid_w1_and_ks_against_scipy_within_the_bound(store: Store, drift_pair: Any) -> None:
    baseline, window, ref, cur = drift_pair
    counts = grid_counts(store, window, baseline.baseline_id, baseline.features, bins=2000)
    assert set(counts) == {"x", "skewed", "ties"}
    for name, grid in counts.items():
        assert grid.n_reference == len(ref) and grid.n_current == len(cur)
        found = grid.distances(ks=True)
        assert found is not None
        exact = stats.wasserstein_distance(ref[name], cur[name])
        assert abs(found.wasserstein - exact) <= grid.w1_error_bound + 1e-12
        d = stats.ks_2samp(ref[name], cur[name]).statistic
        largest_cell = max(grid.reference.max() / len(ref), grid.current.max() / len(cur))
        assert d - largest_cell - 1e-12 <= found.ks_d <= d + 1e-12
        # The counts at the reported edge reproduce the statistic.
        assert found.ks_ref_below is not None and found.ks_cur_below is not None
        gap = abs(found.ks_ref_below / len(ref) - found.ks_cur_below / len(cur))
        assert gap == pytest.approx(found.ks_d, abs=1e-12)
    # A continuous feature on a fine grid is far closer than the worst case.
    x = counts["x"].distances(ks=False)
    assert x is not None
    assert abs(x.wasserstein - stats.wasserstein_distance(ref["x"], cur["x"])) < 1e-3


def test_grid_sturges_bins_equal_numpy_histogram(store: Store, drift_pair: Any) -> None:
    baseline, window, ref, cur = drift_pair
    counts = grid_counts(store, window, baseline.baseline_id, baseline.features, bins=500)
    for name, grid in counts.items():
        edges = np.asarray(baseline.feature(name).edges)
        ref_counts, cur_counts = grid.binned()
        np.testing.assert_array_equal(ref_counts, np.histogram(ref[name], edges)[0])
        expected = np.histogram(np.clip(cur[name], edges[0], edges[-1]), edges)[0]
        np.testing.assert_array_equal(cur_counts, expected)


def test_large_window_run_matches_the_exact_run(store: Store, drift_pair: Any) -> None:
    baseline, window, _, _ = drift_pair
    exact_config = DriftConfig(numeric_methods=METHODS, exact_max_rows=0)
    grid_config = DriftConfig(numeric_methods=METHODS, exact_max_rows=1000)
    exact = run_drift(store, baseline, window, exact_config)
    grid = run_drift(store, baseline, window, grid_config)
    assert len(exact.results) == len(grid.results) == 3 * len(METHODS)
    for e in exact.results:
        g = grid.result(e.feature, e.method)
        assert (g.n_reference, g.n_current) == (e.n_reference, e.n_current)
        if e.method in ("wasserstein", "ks"):
            assert g.score == pytest.approx(e.score, abs=0.01)
        else:  # the same Sturges bins, counted on the grid
            assert g.score == pytest.approx(e.score, rel=1e-12, abs=1e-12)
        assert g.drifted == e.drifted


def test_bad_grid_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="grid_bins"):
        DriftConfig(grid_bins=0)
    with pytest.raises(ValueError, match="exact_max_rows"):
        DriftConfig(exact_max_rows=-1)


def test_rows_of_other_map_layouts_are_counted_too(
    store: Store, rng: np.random.Generator, insert: Any
) -> None:
    ref, cur = _data(rng)
    baseline = register_baseline(store, "grid", ref)
    # Three layouts in one window: the usual one, the keys in another order, and rows where a
    # NaN left a key out of the map.
    first = insert(store, "grid", cur.iloc[:3000])
    later = first.end + timedelta(seconds=1)
    insert(store, "grid", cur.iloc[3000:6000][["ties", "x", "skewed"]], start=later)
    gaps = cur.iloc[6000:].copy()
    gaps.loc[gaps.index[::3], "x"] = np.nan
    last = insert(store, "grid", gaps, start=later + timedelta(seconds=10))
    window = replace(first, end=last.end)
    counts = grid_counts(store, window, baseline.baseline_id, baseline.features, bins=2000)
    for name, grid in counts.items():
        values = cur[name].to_numpy()
        if name == "x":
            values = np.concatenate([values[:6000], gaps["x"].dropna().to_numpy()])
        assert grid.n_current == values.size
        found = grid.distances(ks=False)
        assert found is not None
        exact = stats.wasserstein_distance(ref[name], values)
        assert abs(found.wasserstein - exact) <= grid.w1_error_bound + 1e-12
        edges = np.asarray(baseline.feature(name).edges)
        expected = np.histogram(np.clip(values, edges[0], edges[-1]), edges)[0]
        np.testing.assert_array_equal(grid.binned()[1], expected)


def test_a_large_window_run_counts_what_quality_counts(
    store: Store, rng: np.random.Generator, insert: Any
) -> None:
    ref = pd.DataFrame(
        {"x": rng.normal(size=3000), "k": rng.normal(size=3000), "c": rng.choice(["a", "b"], 3000)}
    )
    baseline = register_baseline(store, "q", ref)
    cur = pd.DataFrame(
        {
            "x": rng.normal(0.5, 2.0, 5000),  # a share outside the baseline's range
            "k": 2.0,  # constant
            "e": rng.normal(size=5000),  # not in the baseline
            "c": rng.choice(["a", "b", "z"], 5000),
        }
    )
    window = insert(store, "q", cur)
    run = run_drift(store, baseline, window, DriftConfig(exact_max_rows=1000))
    values = run.window_values
    assert values is not None and set(values) == {"x", "k", "e"}
    x = cur["x"].to_numpy()
    outside = int(np.sum((x < ref["x"].min()) | (x > ref["x"].max())))
    assert values["x"] == (5000, 5000, outside, 2, x[0])
    assert values["k"].distinct == 1 and values["e"].outside == 0
    own = quality(store, baseline, window)
    assert quality(store, baseline, window, values=values) == own
    # The counts given are the ones used; counts of other rows than the window's are not.
    fewer = {**values, "x": values["x"]._replace(outside=0)}
    shares = {f.feature: f.out_of_range_share for f in own.features}
    assert shares["x"] == outside / 5000 > 0
    used = quality(store, baseline, window, values=fewer)
    assert {f.feature: f.out_of_range_share for f in used.features}["x"] == 0
    stale = {name: v._replace(entries=v.entries - 1) for name, v in values.items()}
    assert quality(store, baseline, window, values=stale) == own
    # An exact run reads no such counts.
    assert run_drift(store, baseline, window).window_values is None


def test_grid_counts_are_not_quality_counts_where_ranges_or_layouts_differ(
    store: Store, rng: np.random.Generator, insert: Any
) -> None:
    large = DriftConfig(exact_max_rows=100)
    # A constant reference feature's bins are widened around its one value (numpy's rule),
    # so its grid does not end at the baseline's [min, max].
    constant = register_baseline(store, "c", pd.DataFrame({"x": rng.normal(size=500), "z": 1.0}))
    window = insert(store, "c", pd.DataFrame({"x": rng.normal(size=600), "z": 1.5}))
    assert run_drift(store, constant, window, large).window_values is None
    # Rows whose maps hold other keys are counted apart by the grid, not by position.
    baseline = register_baseline(store, "l", pd.DataFrame({"x": rng.normal(size=500)}))
    first = insert(store, "l", pd.DataFrame({"x": rng.normal(size=300)}))
    later = insert(store, "l", pd.DataFrame({"x": rng.normal(size=300), "e": 1.0}), start=first.end)
    both = replace(first, end=later.end)
    run = run_drift(store, baseline, both, large)
    assert run.window_values is None and run.n_current == 600


def test_the_baseline_side_is_counted_once_per_grid_size(store: Store, drift_pair: Any) -> None:
    baseline, window, _, _ = drift_pair
    first = grid_counts(store, window, baseline.baseline_id, baseline.features, bins=500)
    stored = store.query(
        "SELECT bins, feature, arraySum(cells) + below + above AS n FROM baseline_grid "
        "WHERE baseline_id = {b:String} ORDER BY feature",
        {"b": baseline.baseline_id},
    ).to_pylist()
    assert stored == [{"bins": 500, "feature": n, "n": 4000} for n in ("skewed", "ties", "x")]
    # A later run reads the stored counts: the same values come back without baseline_values.
    store.command(
        "DELETE FROM baseline_values WHERE baseline_id = {b:String}", {"b": baseline.baseline_id}
    )
    again = grid_counts(store, window, baseline.baseline_id, baseline.features, bins=500)
    for name, grid in first.items():
        np.testing.assert_array_equal(again[name].reference, grid.reference)
        np.testing.assert_array_equal(again[name].current, grid.current)
    # Another grid size is counted anew (here from values no longer there: no reference side).
    assert grid_counts(store, window, baseline.baseline_id, baseline.features, bins=400) == {}


def test_a_store_that_refuses_the_counts_still_gets_a_run(
    store: Store, drift_pair: Any, caplog: pytest.LogCaptureFixture
) -> None:
    baseline, window, _, _ = drift_pair

    class Refusing:
        def __getattr__(self, name: str) -> Any:
            return getattr(store, name)

        def insert(self, table: str, data: Any, **kwargs: Any) -> None:
            raise StoreError("readonly", table)

    counts = grid_counts(Refusing(), window, baseline.baseline_id, baseline.features, bins=300)  # type: ignore[arg-type]
    assert set(counts) == {"x", "skewed", "ties"}
    assert "not stored" in caplog.text
    assert store.query("SELECT count() AS n FROM baseline_grid").to_pylist() == [{"n": 0}]
