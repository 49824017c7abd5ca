"""Predictions of a window joined to their outcomes (delayed labels) by ``prediction_id``.

Both tables are ``ReplacingMergeTree``s that may hold a retried row twice until a merge, so each
side is reduced to one row per id first (the newest outcome wins). Only aggregates leave the
engine; the metrics in ``_performance`` and ``_calibration`` are sums over this join.

``labels`` says how much of the window those metrics see and how late labels come: coverage is
the share of the window's distinct ``prediction_id``s with at least one outcome (a label or a
value), and the delay of a labelled prediction is its first outcome's ``ts`` minus the
prediction's ``ts``, in seconds; median and p90 are exact (``quantilesExactInclusive``, numpy's
linear interpolation). The label time is the outcome's ``ts``, not ``received_at``: ``ts`` is when
the client says the outcome was known (the collector stamps the arrival time when the client
gives none), while ``received_at`` is when the store wrote the row and moves with every retry,
spool replay or bulk import of old labels. The first outcome counts because that is when the
prediction could first be scored; a later correction does not make it later. A negative delay
means the client's clock ran behind the model service's.
"""

from __future__ import annotations

from dataclasses import dataclass

from keelwatch.store import Store

from ._sql import WHERE_WINDOW, Window

__all__ = ["BINARY", "LABELLED", "Labels", "labels"]

#: ``(id, pred_label, pred_value, proba, label, value)`` of the window's labelled predictions.
LABELLED = (
    "SELECT p.prediction_id AS id, p.out_label AS pred_label, p.out_value AS pred_value, "
    "p.out_proba AS proba, o.label AS label, o.value AS value FROM ("
    " SELECT prediction_id, any(out_label) AS out_label, any(out_value) AS out_value,"
    f"  any(out_proba) AS out_proba FROM predictions WHERE {WHERE_WINDOW} GROUP BY prediction_id"
    ") AS p INNER JOIN ("
    " SELECT prediction_id, argMax(label, received_at) AS label,"
    "  argMax(value, received_at) AS value FROM outcomes"
    " WHERE project = {p:String} AND model = {m:String} GROUP BY prediction_id"
    ") AS o ON p.prediction_id = o.prediction_id"
)

#: ``(s, y)``: positive-class score (``output.value``, else the second of two class
#: probabilities) and whether the outcome label is ``{pos}``, for binary classifiers.
BINARY = (
    "SELECT toFloat64(if(pred_value IS NOT NULL, pred_value, proba[2])) AS s, "
    f"toUInt8(label = {{pos:String}}) AS y FROM ({LABELLED}) "
    "WHERE (pred_value IS NOT NULL OR length(proba) = 2) AND label != ''"
)


_DELAYS = (
    "SELECT (SELECT uniqExact(prediction_id) FROM predictions "
    f" WHERE {WHERE_WINDOW}) AS n, count() AS labelled, "
    "quantilesExactInclusive(0.5, 0.9)((lt - pt) / 1e6) AS q FROM ("
    " SELECT prediction_id, toUnixTimestamp64Micro(min(ts)) AS pt FROM predictions"
    f" WHERE {WHERE_WINDOW} GROUP BY prediction_id"
    ") AS p INNER JOIN ("
    " SELECT prediction_id, toUnixTimestamp64Micro(min(ts)) AS lt FROM outcomes"
    " WHERE project = {p:String} AND model = {m:String} GROUP BY prediction_id"
    ") AS o ON p.prediction_id = o.prediction_id"
)


@dataclass(frozen=True)
class Labels:
    """How many of a window's predictions have an outcome, and how long after them it came."""

    predictions: int  # distinct prediction ids in the window
    labelled: int  # of those, with at least one outcome
    coverage: float  # labelled / predictions (0 for an empty window)
    delay_p50_s: float | None  # seconds from prediction ts to first outcome ts; None unlabelled
    delay_p90_s: float | None


def labels(store: Store, window: Window) -> Labels:
    """Label coverage and delay of ``window``'s predictions."""
    row = store.query(_DELAYS, window.params()).to_pylist()[0]
    n, labelled = int(row["n"]), int(row["labelled"])
    p50 = p90 = None
    if labelled:
        p50, p90 = (float(q) for q in row["q"])
    return Labels(n, labelled, labelled / n if n else 0.0, p50, p90)
