"""PCA reconstruction drift in SQL equals scikit-learn's pipeline and finds broken correlations."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from scipy import stats
from sklearn.decomposition import PCA
from sklearn.impute import SimpleImputer
from sklearn.preprocessing import StandardScaler

from keelwatch.detectors import Window, register_baseline, run_drift
from keelwatch.detectors._reconstruction import reconstruction_drift
from keelwatch.store import Store

NAMES = ["a", "b", "c", "d", "e", "f"]


def correlated(rng: np.random.Generator, n: int, d: int = 6) -> pd.DataFrame:
    """Two latent factors behind ``d`` features of different scales and offsets."""
    loadings = np.random.default_rng(7).normal(size=(2, d))
    x = rng.normal(size=(n, 2)) @ loadings + 0.5 * rng.normal(size=(n, d))
    return pd.DataFrame(x * np.arange(1, d + 1) + 50.0, columns=NAMES[:d])


def errors(pca: PCA, z: np.ndarray) -> np.ndarray:
    return np.linalg.norm(z - pca.inverse_transform(pca.transform(z)), axis=1)


def fit(x: np.ndarray, variance: float = 0.65) -> tuple[StandardScaler, PCA]:
    scaler = StandardScaler().fit(x)  # population std, ddof=0
    return scaler, PCA(n_components=variance, svd_solver="full").fit(scaler.transform(x))


def test_equals_scikit_learn(store: Store, rng: np.random.Generator, insert: Any) -> None:
    ref = correlated(rng, 2000)
    ref.iloc[::7, 1] = np.nan
    ref.iloc[[3, 500], :] = np.nan  # rows with no numeric value at all (kept by "kind")
    ref["kind"] = "x"
    cur = correlated(rng, 700)
    cur.iloc[::5, 2] = np.nan
    cur.iloc[10, :] = np.nan
    baseline = register_baseline(store, "m", ref)
    window = insert(store, "m", cur)
    result = reconstruction_drift(store, baseline, window)
    assert result is not None

    numeric = ref[NAMES].to_numpy()
    imputer = SimpleImputer(strategy="mean").fit(numeric)
    x = imputer.transform(numeric)
    scaler, pca = fit(x)
    expected = errors(pca, scaler.transform(imputer.transform(cur[NAMES].to_numpy())))
    assert result.features == tuple(NAMES)
    assert result.components == pca.n_components_
    assert result.variance_explained == pytest.approx(pca.explained_variance_ratio_.sum(), 1e-12)
    assert result.n_rows == 700
    assert abs(result.mean_error - expected.mean()) < 1e-9

    # Each chunk scored by a scaler and PCA fitted on the rest (imputed with the whole mean).
    assert result.chunk_rows == 200 and len(result.chunk_errors) == 10
    for j, found in enumerate(result.chunk_errors):
        rows = slice(200 * j, 200 * (j + 1))
        rest_scaler, rest_pca = fit(np.delete(x, rows, axis=0))
        held_out = errors(rest_pca, rest_scaler.transform(x[rows])).mean()
        assert abs(found - held_out) < 1e-9
    spread = np.std(result.chunk_errors, ddof=1) * math.sqrt(200 / 700)
    assert result.upper == pytest.approx(np.mean(result.chunk_errors) + 3 * spread, 1e-12)
    assert result.lower == pytest.approx(np.mean(result.chunk_errors) - 3 * spread, 1e-12)


def test_non_finite_and_unknown_values_are_imputed(store: Store, rng: np.random.Generator) -> None:
    baseline = register_baseline(store, "m", correlated(rng, 400, d=3))
    means = np.array([p.mean or 0.0 for p in baseline.features])
    # Three rows: one with an infinite value and an unknown feature, one empty, one at the mean.
    keys = [["a", "b", "c", "zz"], [], ["a", "b", "c"]]
    values = [[np.inf, means[1], means[2], 1e9], [], list(means)]
    offsets = np.cumsum([0] + [len(k) for k in keys]).astype(np.int32)
    start = pd.Timestamp("2026-01-01", tz="UTC")
    store.insert(
        "predictions",
        pa.table(
            {
                "project": ["default"] * 3,
                "model": ["m"] * 3,
                "prediction_id": ["p1", "p2", "p3"],
                "ts": pa.array([start] * 3, pa.timestamp("us", tz="UTC")),
                "num": pa.MapArray.from_arrays(
                    pa.array(offsets),
                    pa.array([key for row in keys for key in row]),
                    pa.array([v for row in values for v in row], pa.float64()),
                ),
            }
        ),
    )
    window = Window("m", start.to_pydatetime(), start.to_pydatetime() + timedelta(seconds=1))
    result = reconstruction_drift(store, baseline, window)
    # Every row imputes to the baseline mean, whose residual is that of z = 0 (PCA's centre).
    assert result is not None and result.n_rows == 3
    assert result.mean_error < 1e-12


def test_components_match_scikit_learn(store: Store, rng: np.random.Generator, insert: Any) -> None:
    ref = correlated(rng, 1000)
    baseline = register_baseline(store, "m", ref)
    window = insert(store, "m", correlated(rng, 100))
    z = StandardScaler().fit_transform(ref.to_numpy())
    for variance in (0.2, 0.5, 0.65, 0.8, 0.95, 0.999):
        result = reconstruction_drift(store, baseline, window, variance=variance)
        assert result is not None
        expected = PCA(n_components=variance, svd_solver="full").fit(z).n_components_
        assert result.components == expected, variance


def test_broken_correlation_is_found(store: Store, rng: np.random.Generator, insert: Any) -> None:
    baseline = register_baseline(store, "m", correlated(rng, 4000))
    start = pd.Timestamp("2026-01-01", tz="UTC").to_pydatetime()
    same = insert(store, "m", correlated(rng, 800), start=start)
    broken = correlated(rng, 800)
    broken["b"] = rng.permutation(broken["b"].to_numpy())  # same marginal, no correlation
    shifted = insert(store, "m", broken, start=start + timedelta(days=1))

    quiet = reconstruction_drift(store, baseline, same)
    assert quiet is not None and not quiet.drifted
    loud = reconstruction_drift(store, baseline, shifted)
    assert loud is not None and loud.drifted and loud.mean_error > loud.upper
    # Marginals are unchanged: the univariate deciding methods stay quiet.
    assert not run_drift(store, baseline, shifted).drifted_features


def test_alarm_rate_on_unshifted_data(store: Store, insert: Any) -> None:
    """Over 50 seeds, false alarms stay near the rate the 10-chunk band implies.

    A fresh window's mean error against mean ± 3 sample std of 10 exchangeable chunk means
    falls outside with probability P(|t_9| > 3 / sqrt(1 + 1/10)) = 1.9%; windows of the chunk
    size, so no rescaling is involved (the rescaled band is checked against its formula above).
    """
    nominal = 2 * stats.t.sf(3 / math.sqrt(1.1), 9)
    start = pd.Timestamp("2026-01-01", tz="UTC").to_pydatetime()
    alarms = 0
    for seed in range(50):
        rng = np.random.default_rng(seed)
        baseline = register_baseline(store, f"m{seed}", correlated(rng, 1000, d=4))
        window = insert(store, f"m{seed}", correlated(rng, 100, d=4), start=start)
        result = reconstruction_drift(store, baseline, window)
        assert result is not None and result.chunk_rows == result.n_rows
        alarms += result.drifted
    # 50 x 1.9% = 0.94 expected; 4 or more happens with probability 1.4%.
    assert alarms <= 50 * nominal + 3 * math.sqrt(50 * nominal * (1 - nominal)), alarms


def test_not_applicable(store: Store, rng: np.random.Generator, insert: Any) -> None:
    one = register_baseline(store, "one", pd.DataFrame({"a": rng.normal(size=100), "k": 3.0}))
    window = insert(store, "one", pd.DataFrame({"a": rng.normal(size=10)}))
    assert reconstruction_drift(store, one, window) is None  # one feature with a spread
    two = register_baseline(store, "two", correlated(rng, 100, d=2))
    empty = insert(store, "two", correlated(rng, 0, d=2))
    assert reconstruction_drift(store, two, empty) is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"variance": 0.0}, "variance"),
        ({"variance": 1.0}, "variance"),
        ({"variance": float("nan")}, "variance"),
        ({"variance": "0.6"}, "variance"),
        ({"variance": True}, "variance"),
        ({"chunks": 1}, "chunks"),
        ({"chunks": 2.5}, "chunks"),
        ({"chunks": False}, "chunks"),
        ({"chunks": 60}, "chunks=60 needs a baseline of at least 120 rows"),
    ],
)
def test_bad_arguments(
    store: Store, rng: np.random.Generator, insert: Any, kwargs: dict[str, Any], message: str
) -> None:
    baseline = register_baseline(store, "m", correlated(rng, 100, d=3))
    window = insert(store, "m", correlated(rng, 10, d=3))
    with pytest.raises(ValueError, match=message):
        reconstruction_drift(store, baseline, window, **kwargs)
