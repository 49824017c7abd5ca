"""Multivariate drift: can a classifier tell the window's rows from the baseline's?

Univariate methods miss changes in how features move together (a correlation that flips sign
leaves every marginal distribution intact). A domain classifier sees joint structure: take a
bounded random sample of rows from each side (``sample`` rows at most, chosen in SQL by a hash of
the row number or prediction id, so memory does not grow with the data), label them 0/1, and
measure the cross-validated ROC AUC of scikit-learn's ``HistGradientBoostingClassifier`` (it
handles missing values itself). AUC near 0.5 means the sides are indistinguishable; the
default threshold 0.55 is Evidently's for its domain-classifier text drift (NannyML alerts
outside 0.45–0.65). Numeric features only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from keelwatch.store import Store

from ._baseline import Baseline
from ._sql import WHERE_WINDOW, Window

__all__ = ["DomainClassifierDrift", "domain_classifier_drift"]


@dataclass(frozen=True)
class DomainClassifierDrift:
    auc: float
    threshold: float
    drifted: bool
    n_reference: int
    n_current: int
    features: tuple[str, ...]


def _reference_sample(
    store: Store, baseline_id: str, names: list[str], sample: int, seed: int
) -> np.ndarray:
    rows = store.query(
        "SELECT row, groupArray(feature) AS fs, groupArray(value) AS vs FROM baseline_values "
        "WHERE baseline_id = {b:String} AND row IN ("
        " SELECT DISTINCT row FROM baseline_values WHERE baseline_id = {b:String}"
        " ORDER BY cityHash64(row, {seed:UInt64}) LIMIT {n:UInt64}"
        ") GROUP BY row",
        {"b": baseline_id, "seed": seed, "n": sample},
    ).to_pylist()
    return _matrix([dict(zip(r["fs"], r["vs"], strict=True)) for r in rows], names)


def _current_sample(
    store: Store, window: Window, names: list[str], sample: int, seed: int
) -> np.ndarray:
    rows = store.query(
        f"SELECT num FROM predictions WHERE {WHERE_WINDOW} "
        "ORDER BY cityHash64(prediction_id, {seed:UInt64}) LIMIT {n:UInt64}",
        {**window.params(), "seed": seed, "n": sample},
    ).to_pylist()
    return _matrix([dict(r["num"]) for r in rows], names)


def _matrix(rows: list[dict[str, float]], names: list[str]) -> np.ndarray:
    out = np.full((len(rows), len(names)), np.nan)
    for i, row in enumerate(rows):
        for j, name in enumerate(names):
            value = row.get(name)
            if value is not None and np.isfinite(value):
                out[i, j] = value
    return out


def domain_classifier_drift(
    store: Store,
    baseline: Baseline,
    window: Window,
    *,
    sample: int = 2000,
    threshold: float = 0.55,
    folds: int = 3,
    seed: int = 0,
) -> DomainClassifierDrift | None:
    """Cross-validated ROC AUC of telling window rows from baseline rows; ``None`` if too few."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    names = [p.name for p in baseline.features if p.kind == "numeric" and p.count > 0]
    if not names:
        return None
    ref = _reference_sample(store, baseline.baseline_id, names, sample, seed)
    cur = _current_sample(store, window, names, sample, seed)
    if min(len(ref), len(cur)) < 5 * folds:
        return None
    x = np.vstack([ref, cur])
    y = np.concatenate([np.zeros(len(ref)), np.ones(len(cur))])
    model = HistGradientBoostingClassifier(max_iter=100, random_state=seed)
    splits = StratifiedKFold(folds, shuffle=True, random_state=seed)
    scores = cross_val_predict(model, x, y, cv=splits, method="predict_proba")[:, 1]
    auc = float(roc_auc_score(y, scores))
    return DomainClassifierDrift(auc, threshold, auc > threshold, len(ref), len(cur), tuple(names))
