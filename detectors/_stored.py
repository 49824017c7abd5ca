"""Drift runs written to ``drift_results``, one row per feature and method."""

from __future__ import annotations

from datetime import datetime, timezone

import pyarrow as pa

from keelwatch.store import Store

from ._drift import DriftRun
from ._sql import format_segment

__all__ = ["store_run"]


def store_run(store: Store, run: DriftRun, *, replace: bool = False) -> None:
    """Append a run's results to ``drift_results``, with its window's version, slot and segment.

    The run id is the insert deduplication token, so storing a run twice (a retry, or a
    backfill re-run with deterministic ids) leaves one copy. ``replace`` deletes the rows
    already stored under the run id first and inserts under a fresh token (the old token
    would make the engine drop the new rows as a repeat).
    """
    if not run.results:
        return
    n = len(run.results)
    now = datetime.now(timezone.utc)
    token = run.run_id
    if replace:
        store.command(
            "DELETE FROM drift_results WHERE project = {p:String} AND model = {m:String} "
            "AND run_id = {r:String}",
            {"p": run.window.project, "m": run.model, "r": run.run_id},
        )
        token = f"{run.run_id}.{now.timestamp():.6f}"
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
