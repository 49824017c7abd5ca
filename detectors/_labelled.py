"""Predictions of a window joined to their outcomes (delayed labels) by ``prediction_id``.

Both tables are ``ReplacingMergeTree``s that may hold a retried row twice until a merge, so each
side is reduced to one row per id first (the newest outcome wins). Only aggregates leave the
engine; the metrics in ``_performance`` and ``_calibration`` are sums over this join.
"""

from __future__ import annotations

from ._sql import WHERE_WINDOW

__all__ = ["BINARY", "LABELLED"]

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
