"""Performance and calibration from predictions joined to outcomes, against scikit-learn."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn import calibration as skcal
from sklearn import metrics

from keelwatch.detectors import calibration, classification, multiclass_calibration, regression
from keelwatch.store import Store


def _outcomes(store: Store, ids: list[str], labels: list[str], values: Any = None) -> None:
    n = len(ids)
    ts = pd.Timestamp("2026-02-01", tz="UTC")
    store.insert(
        "outcomes",
        pa.table(
            {
                "project": ["default"] * n,
                "model": ["m"] * n,
                "prediction_id": ids,
                "ts": pa.array([ts] * n, pa.timestamp("us", tz="UTC")),
                "label": labels,
                "value": pa.array(values if values is not None else [None] * n, pa.float64()),
            }
        ),
    )


def _binary(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    score = np.round(rng.beta(2, 3, n), 3)  # rounded: ties exercise the rank formulas
    score = np.clip(score, 0.001, 0.999)
    y = (rng.uniform(size=n) < score**0.8).astype(int)
    return score, y


def test_classification_and_calibration_match_sklearn(
    store: Store, rng: np.random.Generator, insert: Any
) -> None:
    n = 3000
    score, y = _binary(rng, n)
    ids = [f"id{i}" for i in range(n)]
    predicted = np.where(score >= 0.5, "1", "0")
    window = insert(
        store,
        "m",
        pd.DataFrame({"x": np.zeros(n)}),
        prediction_id=ids,
        out_label=predicted.tolist(),
        out_proba=[[1 - s, s] for s in score],
    )
    _outcomes(store, ids[:-100], [str(v) for v in y[:-100]])  # the last 100 are unlabelled
    # A later correction of one outcome wins.
    _outcomes(store, ids[:1], [str(1 - y[0])])
    y = y[:-100].copy()
    y[0] = 1 - y[0]
    score, predicted = score[:-100], predicted[:-100]
    truth = y.astype(str)

    perf = classification(store, window)
    assert perf is not None and perf.n == n - 100
    assert perf.accuracy == pytest.approx(metrics.accuracy_score(truth, predicted))
    assert perf.precision == pytest.approx(metrics.precision_score(truth, predicted, pos_label="1"))
    assert perf.recall == pytest.approx(metrics.recall_score(truth, predicted, pos_label="1"))
    assert perf.f1 == pytest.approx(metrics.f1_score(truth, predicted, pos_label="1"))
    assert perf.roc_auc == pytest.approx(metrics.roc_auc_score(y, score), abs=1e-12)
    assert perf.pr_auc == pytest.approx(metrics.average_precision_score(y, score), abs=1e-12)

    for strategy in ("uniform", "quantile"):
        cal = calibration(store, window, strategy=strategy)
        assert cal is not None
        assert cal.brier == pytest.approx(metrics.brier_score_loss(y, score), abs=1e-12)
        assert cal.log_loss == pytest.approx(metrics.log_loss(y, score), abs=1e-12)
        true_rate, mean_score = skcal.calibration_curve(y, score, n_bins=10, strategy=strategy)
        np.testing.assert_allclose([p.positive_rate for p in cal.points], true_rate, atol=1e-12)
        np.testing.assert_allclose([p.mean_score for p in cal.points], mean_score, atol=1e-12)
        counts = np.array([p.count for p in cal.points])
        gaps = np.abs(true_rate - mean_score)
        assert cal.ece == pytest.approx(np.sum(counts / counts.sum() * gaps), abs=1e-12)
        assert cal.mce == pytest.approx(gaps.max(), abs=1e-12)


def test_regression_matches_sklearn(store: Store, rng: np.random.Generator, insert: Any) -> None:
    n = 500
    truth = rng.normal(10, 3, n)
    truth[0] = 0.0  # MAPE's epsilon floor
    predicted = truth + rng.normal(0, 1, n)
    ids = [f"r{i}" for i in range(n)]
    window = insert(
        store,
        "m",
        pd.DataFrame({"x": np.zeros(n)}),
        start=pd.Timestamp("2026-01-02", tz="UTC").to_pydatetime(),
        prediction_id=ids,
        out_value=predicted,
    )
    _outcomes(store, ids, [""] * n, truth)
    reg = regression(store, window)
    assert reg is not None and reg.n == n
    assert reg.rmse == pytest.approx(np.sqrt(metrics.mean_squared_error(truth, predicted)))
    assert reg.mae == pytest.approx(metrics.mean_absolute_error(truth, predicted))
    assert reg.mape == pytest.approx(metrics.mean_absolute_percentage_error(truth, predicted))
    assert classification(store, window) is None
    later = window.__class__("m", window.end + timedelta(days=1), window.end + timedelta(days=2))
    assert regression(store, later) is None and calibration(store, later) is None


def test_multiclass_calibration_matches_sklearn(
    store: Store, rng: np.random.Generator, insert: Any
) -> None:
    n, classes = 1500, ("cat", "dog", "eel")
    proba = rng.dirichlet([2.0, 1.0, 1.0], n)
    truth = np.array([rng.choice(3, p=p) for p in proba])
    ids = [f"c{i}" for i in range(n)]
    window = insert(
        store,
        "m",
        pd.DataFrame({"x": np.zeros(n)}),
        start=pd.Timestamp("2026-01-03", tz="UTC").to_pydatetime(),
        prediction_id=ids,
        out_proba=proba.tolist(),
    )
    labels = [classes[k] for k in truth]
    _outcomes(store, ids, labels)
    cal = multiclass_calibration(store, window, classes)
    assert cal is not None and cal.n == n
    onehot = np.eye(3)[truth]
    assert cal.brier == pytest.approx(np.mean(np.sum((proba - onehot) ** 2, axis=1)), abs=1e-12)
    assert cal.log_loss == pytest.approx(
        metrics.log_loss(labels, proba, labels=list(classes)), abs=1e-12
    )
    confidence, correct = proba.max(axis=1), (proba.argmax(axis=1) == truth).astype(int)
    rate, mean = skcal.calibration_curve(correct, confidence, n_bins=10)
    np.testing.assert_allclose([p.positive_rate for p in cal.points], rate, atol=1e-12)
    np.testing.assert_allclose([p.mean_score for p in cal.points], mean, atol=1e-12)
