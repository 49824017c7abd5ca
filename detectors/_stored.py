"""Detector results written to the store: drift runs to ``drift_results`` (one row per feature
and method), the other detectors of a window to ``detector_results`` (one row per metric)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import datetime, timezone

import pyarrow as pa

from keelwatch.store import Store

from ._detect import Detection
from ._drift import DriftRun
from ._sql import Window, format_segment

__all__ = ["detection_rows", "store_detection", "store_run"]

_TABLES = ("drift_results", "detector_results")


def _token(
    store: Store, table: str, window: Window, run_id: str, now: datetime, replace: bool
) -> str:
    """The insert deduplication token of a run's rows in ``table``: the run id, or with
    ``replace`` a fresh one after deleting the rows stored under the run id (the old token
    would make the engine drop the new rows as a repeat)."""
    if table not in _TABLES:
        raise ValueError(f"table: not a results table: {table!r}")
    if not replace:
        return run_id
    store.command(
        f"DELETE FROM {table} WHERE project = {{p:String}} AND model = {{m:String}} "
        "AND run_id = {r:String}",
        {"p": window.project, "m": window.model, "r": run_id},
    )
    return f"{run_id}.{now.timestamp():.6f}"


def store_run(store: Store, run: DriftRun, *, replace: bool = False) -> None:
    """Append a run's results to ``drift_results``, with its window's version, slot and segment.

    The run id is the insert deduplication token, so storing a run twice (a retry, or a
    backfill re-run with deterministic ids) leaves one copy. ``replace`` deletes the rows
    already stored under the run id first and inserts under a fresh token.
    """
    if not run.results:
        return
    n = len(run.results)
    now = datetime.now(timezone.utc)
    token = _token(store, "drift_results", run.window, run.run_id, now, replace)
    ts = pa.timestamp("us", tz="UTC")
    store.insert(
        "drift_results",
        pa.table(
            {
                "project": [run.window.project] * n,
                "model": [run.model] * n,
                "run_id": [run.run_id] * n,
                "window_start": pa.array([run.window.start] * n, ts),
                "window_end": pa.array([run.window.end] * n, ts),
                "baseline_id": [run.baseline_id] * n,
                "version": [run.window.version] * n,
                "slot": [run.window.slot] * n,
                "segment": [format_segment(run.window.segment)] * n,
                "window_kind": [run.window.kind] * n,
                "window_count": pa.array([run.window.count] * n, pa.uint64()),
                "feature": [r.feature for r in run.results],
                "kind": [r.kind for r in run.results],
                "method": [r.method for r in run.results],
                "score": pa.array([r.score for r in run.results], pa.float64()),
                "p_value": pa.array([r.p_value for r in run.results], pa.float64()),
                "threshold": [r.threshold for r in run.results],
                "drifted": pa.array([int(r.drifted) for r in run.results], pa.uint8()),
                "deciding": pa.array([int(r.deciding) for r in run.results], pa.uint8()),
                "p_adjusted": pa.array([r.p_adjusted for r in run.results], pa.float64()),
                "n_reference": pa.array([r.n_reference for r in run.results], pa.uint64()),
                "n_current": pa.array([r.n_current for r in run.results], pa.uint64()),
                "computed_at": pa.array([now] * n, pa.timestamp("ms", tz="UTC")),
            }
        ),
        dedup_token=token,
    )


#: (detector, metric, subject, version, slot, value)
Row = tuple[str, str, str, str, str, float | None]


def detection_rows(detection: Detection) -> Iterator[Row]:
    """The numbers a window's detectors beside drift found, one per metric (``None`` where a
    metric has no value)."""
    w = detection.window
    q = detection.quality
    if q is not None:
        yield "quality", "rows", "", w.version, w.slot, q.rows
        yield "quality", "duplicate_ids", "", w.version, w.slot, q.duplicate_ids
        for f in q.features:
            yield "quality", "missing_rate", f.feature, w.version, w.slot, f.missing_rate
            share = ("out_of_range_share", f.out_of_range_share)
            if f.kind != "numeric":
                share = ("unseen_share", f.unseen_share)
            yield "quality", share[0], f.feature, w.version, w.slot, share[1]
    for ops in detection.operations:
        for metric in ("calls", "failure_rate", "throughput_per_s"):
            yield "operations", metric, "", ops.version, ops.slot, getattr(ops, metric)
        for metric in ("latency_p50_ms", "latency_p95_ms", "latency_p99_ms"):
            yield "operations", metric, "", ops.version, ops.slot, getattr(ops, metric)
    for detector, metric, value in detection.outcome_metrics():
        yield detector, metric, "", w.version, w.slot, value
    for c in detection.cost:
        if c.priced:
            yield "cost", "total_cost", c.currency, c.version, c.slot, c.total_cost


def store_detection(
    store: Store, run_id: str, detection: Detection, *, replace: bool = False
) -> None:
    """Append a window's results beside drift to ``detector_results`` under ``run_id`` (its
    drift run's id; the insert deduplication token, so a retry stores them once). Metrics
    without a value (no positive class, no latency yet) are left out. ``replace`` deletes the
    rows stored under ``run_id`` first, as :func:`store_run` does."""
    w = detection.window
    now = datetime.now(timezone.utc)
    token = _token(store, "detector_results", w, run_id, now, replace)
    rows = [r for r in detection_rows(detection) if r[5] is not None and math.isfinite(r[5])]
    if not rows:
        return
    n = len(rows)
    ts = pa.timestamp("us", tz="UTC")
    columns = list(zip(*rows, strict=True))
    store.insert(
        "detector_results",
        pa.table(
            {
                "project": [w.project] * n,
                "model": [w.model] * n,
                "run_id": [run_id] * n,
                "window_start": pa.array([w.start] * n, ts),
                "window_end": pa.array([w.end] * n, ts),
                "version": list(columns[3]),
                "slot": list(columns[4]),
                "segment": [format_segment(w.segment)] * n,
                "detector": list(columns[0]),
                "metric": list(columns[1]),
                "subject": list(columns[2]),
                "value": pa.array([float(v) for v in columns[5]], pa.float64()),
                "computed_at": pa.array([now] * n, pa.timestamp("ms", tz="UTC")),
            }
        ),
        dedup_token=f"{token}.detectors",
    )
