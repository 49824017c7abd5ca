"""Model performance over a window once outcomes arrive, from sums in SQL.

Classification (binary, ``positive`` label): accuracy over predicted vs true labels; precision,
recall and F1 of the positive class (0 when undefined, sklearn's ``zero_division=0``); ROC AUC
by the rank formula with ties counted half, ``Σ_t pos_t (neg_<t + neg_t / 2) / (P · N)``
(``roc_auc_score``); PR AUC as average precision ``Σ (R_t − R_{t−1}) · P_t`` over distinct
scores from the highest down (``average_precision_score``). Both AUCs sort the distinct scores
inside the engine.

Regression (outcome ``value`` against ``output.value``): RMSE, MAE and MAPE
``mean(|y − ŷ| / max(|y|, ε))`` with ε the float64 machine epsilon (sklearn's definition).

Both carry the window's ``Labels`` (``_labelled``): the metrics cover only the labelled share of
the window, and the label delay says how far back they can be trusted ("accuracy over 40% of the
window, labels arrive after about 3 h").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from keelwatch.store import Store

from ._labelled import BINARY, LABELLED, Labels, labels
from ._sql import Window

__all__ = ["Classification", "Regression", "classification", "regression"]

_EPS = float(np.finfo(np.float64).eps)


@dataclass(frozen=True)
class Classification:
    n: int
    accuracy: float
    precision: float
    recall: float
    f1: float
    roc_auc: float | None
    pr_auc: float | None
    labels: Labels | None = None  # coverage and delay of the window's outcomes


@dataclass(frozen=True)
class Regression:
    n: int
    rmse: float
    mae: float
    mape: float
    labels: Labels | None = None  # coverage and delay of the window's outcomes


_CURVES = f"""
SELECT P, N,
 arraySum((p, n, b) -> p * (b + n / 2), pos, neg, arrayCumSum(neg) - neg) / (P * N) AS roc_auc,
 arraySum((p, t, f) -> (p / P) * (t / (t + f)), rpos, arrayCumSum(rpos), arrayCumSum(rneg)) AS ap
FROM (
 SELECT arraySort((v, k) -> k, groupArray(np), groupArray(s)) AS pos,
  arraySort((v, k) -> k, groupArray(nn), groupArray(s)) AS neg,
  arrayReverse(pos) AS rpos, arrayReverse(neg) AS rneg,
  toFloat64(sum(np)) AS P, toFloat64(sum(nn)) AS N
 FROM (SELECT s, toFloat64(countIf(y = 1)) AS np, toFloat64(countIf(y = 0)) AS nn
       FROM ({BINARY}) GROUP BY s)
)
"""


def classification(store: Store, window: Window, positive: str = "1") -> Classification | None:
    """Classification metrics of ``window``'s labelled predictions; ``None`` without labels."""
    params: dict[str, object] = {**window.params(), "pos": positive}
    row = store.query(
        "SELECT count() AS n, countIf(pred_label = label) AS hit, "
        "countIf(pred_label = {pos:String} AND label = {pos:String}) AS tp, "
        "countIf(pred_label = {pos:String} AND label != {pos:String}) AS fp, "
        "countIf(pred_label != {pos:String} AND label = {pos:String}) AS fn "
        f"FROM ({LABELLED}) WHERE label != ''",
        params,
    ).to_pylist()[0]
    n = int(row["n"])
    if n == 0:
        return None
    tp, fp, fn = int(row["tp"]), int(row["fp"]), int(row["fn"])
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
    curves = store.query(_CURVES, params).to_pylist()
    roc_auc = pr_auc = None
    if curves and curves[0]["P"] and curves[0]["N"]:
        roc_auc, pr_auc = float(curves[0]["roc_auc"]), float(curves[0]["ap"])
    return Classification(
        n,
        int(row["hit"]) / n,
        precision,
        recall,
        f1,
        roc_auc,
        pr_auc,
        labels(store, window),
    )


def regression(store: Store, window: Window) -> Regression | None:
    """Regression errors of ``window``'s labelled predictions; ``None`` without outcomes."""
    row = store.query(
        "SELECT count() AS n, sqrt(avg(pow(value - pred_value, 2))) AS rmse, "
        "avg(abs(value - pred_value)) AS mae, "
        "avg(abs(value - pred_value) / greatest(abs(value), {eps:Float64})) AS mape "
        f"FROM ({LABELLED}) WHERE value IS NOT NULL AND pred_value IS NOT NULL",
        {**window.params(), "eps": _EPS},
    ).to_pylist()[0]
    if not row["n"]:
        return None
    return Regression(
        int(row["n"]),
        float(row["rmse"]),
        float(row["mae"]),
        float(row["mape"]),
        labels(store, window),
    )
