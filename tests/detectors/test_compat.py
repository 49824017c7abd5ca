"""``compat="evidently"`` and ``compat="nannyml"`` reproduce the peers' numbers.

Evidently 0.7.23's own stattest functions are the oracle; NannyML is not installed, so its
formulas (Doane bins on the reference, an extra out-of-range bin, base-2 Jensen-Shannon,
Hellinger) are rebuilt from numpy and SciPy.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy.spatial import distance

from keelwatch.detectors import DriftConfig, register_baseline, run_drift
from keelwatch.store import Store

stattests = pytest.importorskip("evidently.legacy.calculations.stattests")
registry = pytest.importorskip("evidently.legacy.calculations.stattests.registry")
ColumnType = pytest.importorskip("evidently.legacy.core").ColumnType

# keelwatch method -> Evidently stattest
EVIDENTLY = {
    "psi": stattests.psi_stat_test,
    "kl_div": stattests.kl_div_stat_test,
    "jensen_shannon": stattests.jensenshannon_stat_test,
    "hellinger": stattests.hellinger_stat_test,
    "wasserstein": stattests.wasserstein_stat_test,
    "ks": stattests.ks_stat_test,
    "chi_square": stattests.chi_stat_test,
    "z_test": stattests.z_stat_test,
}
NUMERIC = ("psi", "kl_div", "jensen_shannon", "hellinger", "wasserstein", "ks")
CATEGORICAL = ("psi", "kl_div", "jensen_shannon", "hellinger", "chi_square")
# Evidently reports the p-value as the score of p-value tests.
P_VALUES = {"ks", "chi_square", "z_test"}


def _frames(rng: np.random.Generator, n_ref: int, n_cur: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    ref = pd.DataFrame(
        {
            "wide": rng.normal(size=n_ref),
            "skewed": rng.lognormal(size=n_ref),
            "few": rng.integers(0, 12, n_ref).astype(float),
            "color": rng.choice(["a", "b", "c", "d"], n_ref, p=[0.4, 0.3, 0.2, 0.1]),
            "flag": rng.choice(["no", "yes"], n_ref, p=[0.8, 0.2]),
        }
    )
    cur = pd.DataFrame(
        {
            "wide": rng.normal(0.4, 1.3, size=n_cur),
            "skewed": rng.lognormal(0.2, 1.0, size=n_cur),
            "few": rng.integers(2, 15, n_cur).astype(float),
            "color": rng.choice(["a", "b", "c", "d", "e"], n_cur, p=[0.3, 0.3, 0.2, 0.1, 0.1]),
            "flag": rng.choice(["no", "yes"], n_cur, p=[0.7, 0.3]),
        }
    )
    ref.loc[3, "wide"] = np.nan
    return ref, cur


def _evidently(method: str, ref: pd.Series, cur: pd.Series, kind: Any) -> float:
    with warnings.catch_warnings():  # chi-square of an unseen category divides by zero
        warnings.simplefilter("ignore", RuntimeWarning)
        result = EVIDENTLY[method](ref.dropna().copy(), cur.dropna().copy(), kind, 0.1)
    return float(result.drift_score)


@pytest.mark.parametrize(("n_ref", "n_cur"), [(3000, 2000), (600, 400)])
def test_evidently_values(
    store: Store, rng: np.random.Generator, insert: Any, n_ref: int, n_cur: int
) -> None:
    ref, cur = _frames(rng, n_ref, n_cur)
    baseline = register_baseline(store, "m", ref)
    window = insert(store, "m", cur)
    config = DriftConfig(
        numeric_methods=NUMERIC, categorical_methods=(*CATEGORICAL, "z_test"), compat="evidently"
    )
    run = run_drift(store, baseline, window, config)
    checked = 0
    for feature in ref.columns:
        categorical = ref[feature].dtype == object
        kind = ColumnType.Categorical if categorical else ColumnType.Numerical
        methods = (*CATEGORICAL, "z_test") if categorical else NUMERIC
        for method in methods:
            if method == "z_test" and feature != "flag":
                continue
            ours = run.result(feature, method)
            value = ours.p_value if method in P_VALUES else ours.score
            assert value is not None
            expected = _evidently(method, ref[feature], cur[feature], kind)
            assert value == pytest.approx(expected, abs=1e-6), (feature, method)
            checked += 1
    assert checked == 3 * len(NUMERIC) + 2 * len(CATEGORICAL) + 1


@pytest.mark.parametrize(("n_ref", "n_cur"), [(3000, 2000), (600, 400), (900, 50)])
def test_evidently_default_selection(
    store: Store, rng: np.random.Generator, insert: Any, n_ref: int, n_cur: int
) -> None:
    ref, cur = _frames(rng, n_ref, n_cur)
    ref["three"] = rng.integers(0, 3, n_ref).astype(float)
    cur["three"] = rng.integers(0, 3, n_cur).astype(float)
    # Few values in the reference, more in the window: under and over the window's value cap.
    ref["eight"] = rng.integers(0, 4, n_ref).astype(float)
    cur["eight"] = rng.integers(0, 8, n_cur).astype(float)
    ref["spread"] = rng.integers(0, 4, n_ref).astype(float)
    cur["spread"] = rng.normal(2.0, 1.0, n_cur)
    baseline = register_baseline(store, "m", ref)
    window = insert(store, "m", cur)
    run = run_drift(store, baseline, window, DriftConfig.evidently())
    for result in run.results:
        r, c = ref[result.feature].dropna(), cur[result.feature].dropna()
        kind = ColumnType.Categorical if r.dtype == object else ColumnType.Numerical
        expected = registry.get_stattest(r, c, kind, None)
        assert EVIDENTLY[result.method] is expected, result.feature
        value = result.p_value if result.method in P_VALUES else result.score
        assert value == pytest.approx(_evidently(result.method, r, c, kind), abs=1e-6), (
            result.feature
        )
        assert result.deciding


def _nannyml_numeric(ref: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    edges = np.histogram_bin_edges(ref, "doane")
    r = np.histogram(ref, edges)[0] / ref.size
    inside = np.histogram(cur, edges)[0] / cur.size
    return np.append(r, 0.0), np.append(inside, 1.0 - inside.sum())


def test_nannyml_values(store: Store, rng: np.random.Generator, insert: Any) -> None:
    ref, cur = _frames(rng, 2500, 1200)
    baseline = register_baseline(store, "m", ref)
    window = insert(store, "m", cur)
    config = DriftConfig(
        numeric_methods=("jensen_shannon", "hellinger"),
        categorical_methods=("jensen_shannon", "hellinger"),
        compat="nannyml",
    )
    run = run_drift(store, baseline, window, config)
    for feature in ("wide", "skewed", "few"):
        p, q = _nannyml_numeric(ref[feature].dropna().to_numpy(), cur[feature].to_numpy())
        js = run.result(feature, "jensen_shannon").score
        assert js == pytest.approx(distance.jensenshannon(p, q, base=2), abs=1e-9)
        hellinger = math.sqrt(np.sum((np.sqrt(p) - np.sqrt(q)) ** 2)) / math.sqrt(2)
        assert run.result(feature, "hellinger").score == pytest.approx(hellinger, abs=1e-9)
    keys = sorted(set(ref["color"]) | set(cur["color"]))
    p = ref["color"].value_counts(normalize=True).reindex(keys, fill_value=0).to_numpy()
    q = cur["color"].value_counts(normalize=True).reindex(keys, fill_value=0).to_numpy()
    assert run.result("color", "jensen_shannon").score == pytest.approx(
        distance.jensenshannon(p, q, base=2), abs=1e-9
    )
