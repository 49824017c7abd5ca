"""Calibration of a binary classifier over a window, from binned sums in SQL.

With scores ``s`` (positive-class probability) and outcomes ``y`` in {0, 1}:

- Brier score ``mean((s − y)²)`` (``sklearn.metrics.brier_score_loss``);
- log loss ``−mean(y ln s' + (1 − y) ln(1 − s'))``, ``s' = clip(s, ε, 1 − ε)`` with ε the float64
  machine epsilon (``sklearn.metrics.log_loss``);
- reliability points per bin: mean score, observed positive rate and count
  (``sklearn.calibration.calibration_curve``; empty bins are left out). Bins are ``n_bins``
  equal-width bins over [0, 1] (``"uniform"``) or equal-mass bins whose edges are the exact
  linear-interpolation percentiles of the scores (``"quantile"``); a score equal to an inner edge
  goes to the lower bin, as sklearn's ``searchsorted(..., side="left")``;
- ECE ``Σ_b (n_b / N) |mean s_b − mean y_b|`` and MCE ``max_b |mean s_b − mean y_b|`` over
  those bins. NannyML's ECE is the equal-mass variant (10 bins).

Multiclass (``multiclass_calibration``, ``classes`` in the order of ``output.proba``): Brier
``mean(Σ_k (p_k − [y = k])²)``, log loss ``−mean(ln clip(p_y))``, and top-label calibration:
the same bins over the confidence ``max_k p_k`` against whether the first arg-max is the label.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from keelwatch.store import Store

from ._labelled import BINARY, LABELLED
from ._sql import Window

__all__ = ["Calibration", "ReliabilityPoint", "calibration", "multiclass_calibration"]

_EPS = float(np.finfo(np.float64).eps)


@dataclass(frozen=True)
class ReliabilityPoint:
    mean_score: float
    positive_rate: float
    count: int


@dataclass(frozen=True)
class Calibration:
    """Calibration metrics of one window's labelled predictions."""

    n: int
    brier: float
    log_loss: float
    ece: float
    mce: float
    strategy: str
    points: tuple[ReliabilityPoint, ...]


def _edges(
    store: Store, params: dict[str, object], n_bins: int, strategy: str, source: str
) -> list[float]:
    if strategy == "uniform":
        return [float(e) for e in np.linspace(0.0, 1.0, n_bins + 1)]
    levels = ", ".join(repr(float(q)) for q in np.linspace(0.0, 1.0, n_bins + 1))
    row = store.query(
        f"SELECT quantilesExactInclusive({levels})(s) AS q FROM ({source})", params
    ).to_pylist()[0]
    return [float(e) for e in row["q"]]


def _reliability(
    store: Store, params: dict[str, object], source: str, n: int, n_bins: int, strategy: str
) -> tuple[float, float, tuple[ReliabilityPoint, ...]]:
    """ECE, MCE and reliability points of ``source``'s ``(s, y)`` rows."""
    edges = _edges(store, params, n_bins, strategy, source)
    rows = store.query(
        "SELECT arrayCount(e -> e < s, {inner:Array(Float64)}) AS b, count() AS c, "
        f"avg(s) AS ms, avg(y) AS my FROM ({source}) GROUP BY b ORDER BY b",
        {**params, "inner": edges[1:-1]},
    ).to_pylist()
    points = tuple(ReliabilityPoint(float(r["ms"]), float(r["my"]), int(r["c"])) for r in rows)
    gaps = [abs(p.mean_score - p.positive_rate) for p in points]
    ece = sum(p.count / n * g for p, g in zip(points, gaps, strict=True))
    return ece, max(gaps), points


def _check(n_bins: int, strategy: str) -> None:
    if strategy not in ("uniform", "quantile"):
        raise ValueError(f"strategy must be uniform or quantile, got {strategy!r}")
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}")


def calibration(
    store: Store,
    window: Window,
    positive: str = "1",
    n_bins: int = 10,
    strategy: str = "uniform",
) -> Calibration | None:
    """Calibration of ``window``'s labelled binary predictions; ``None`` without labels."""
    _check(n_bins, strategy)
    params: dict[str, object] = {**window.params(), "pos": positive}
    total = store.query(
        "SELECT count() AS n, avg(pow(s - y, 2)) AS brier, "
        "-avg(y * log(least(greatest(s, {eps:Float64}), 1 - {eps:Float64})) + "
        "(1 - y) * log(1 - least(greatest(s, {eps:Float64}), 1 - {eps:Float64}))) AS ll "
        f"FROM ({BINARY})",
        {**params, "eps": _EPS},
    ).to_pylist()[0]
    n = int(total["n"])
    if n == 0:
        return None
    ece, mce, points = _reliability(store, params, BINARY, n, n_bins, strategy)
    return Calibration(n, float(total["brier"]), float(total["ll"]), ece, mce, strategy, points)


_MULTI = (
    "SELECT proba, indexOf({classes:Array(String)}, label) AS yi, arrayMax(proba) AS s, "
    "toUInt8(arrayFirstIndex(p -> p = s, proba) = yi) AS y "
    f"FROM ({LABELLED}) WHERE length(proba) = length({{classes:Array(String)}}) AND yi > 0"
)


def multiclass_calibration(
    store: Store,
    window: Window,
    classes: tuple[str, ...],
    n_bins: int = 10,
    strategy: str = "uniform",
) -> Calibration | None:
    """Multiclass Brier, log loss and top-label calibration; ``None`` without labels.

    Args:
        classes: the class labels in the order of ``output.proba``.
    """
    _check(n_bins, strategy)
    params: dict[str, object] = {**window.params(), "classes": list(classes), "eps": _EPS}
    total = store.query(
        "SELECT count() AS n, "
        "avg(arraySum((p, k) -> pow(p - (k = yi), 2), proba, arrayEnumerate(proba))) AS brier, "
        "-avg(log(least(greatest(proba[yi], {eps:Float64}), 1 - {eps:Float64}))) AS ll "
        f"FROM ({_MULTI})",
        params,
    ).to_pylist()[0]
    n = int(total["n"])
    if n == 0:
        return None
    ece, mce, points = _reliability(store, params, _MULTI, n, n_bins, strategy)
    return Calibration(n, float(total["brier"]), float(total["ll"]), ece, mce, strategy, points)
