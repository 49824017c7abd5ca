"""Backfill: every detector over consecutive windows of history, each window stored once.

A backfill cuts a range into windows (by time or by prediction count, optionally one series per
tag value), runs drift on each, then the detectors beside it (data quality, operations,
performance, calibration, cost, labels), and stores both under the window's deterministic
``run_id``: drift in ``drift_results``, the rest in ``detector_results``. A window whose run is
already stored is skipped, so running a backfill again stores nothing twice. Alert rules are
not evaluated over history.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from keelwatch.store import Store

from ._baseline import get_baseline
from ._config import DriftConfig
from ._detect import Detection, detect_window
from ._drift import DriftRun, run_drift
from ._sql import WHERE_WINDOW, Segment, Window
from ._stored import store_detection, store_run
from ._windows import (
    MAX_SEGMENT_VALUES,
    MAX_WINDOWS,
    count_windows,
    parse_every,
    run_id,
    segment_windows,
    time_windows,
)

__all__ = ["Backfill", "backfill"]


@dataclass(frozen=True)
class Backfill:
    """What a backfill did: every window, the runs it computed and stored, what it skipped.

    ``skipped`` are windows whose run id was already stored; ``empty`` are time windows with
    no predictions (nothing to compare, nothing stored). ``detections`` holds the other
    detectors' results of each run in ``runs``, in the same order (empty when they were not
    asked for).
    """

    windows: tuple[Window, ...]
    runs: tuple[DriftRun, ...]
    skipped: tuple[Window, ...]
    empty: tuple[Window, ...]
    detections: tuple[Detection, ...] = ()


def _time_counts(store: Store, window: Window, every: timedelta) -> dict[int, int]:
    """Predictions per ``every``-long window from ``window.start``, in one aggregation."""
    rows = store.query(
        "SELECT intDiv(toUnixTimestamp64Micro(ts) - {t0:Int64}, {us:Int64}) AS i, count() AS c "
        f"FROM predictions WHERE {WHERE_WINDOW} GROUP BY i",
        {**window.params(), "us": every // timedelta(microseconds=1)},
    ).to_pylist()
    return {int(r["i"]): int(r["c"]) for r in rows}


def _stored_ids(store: Store, project: str, model: str, ids: Sequence[str]) -> set[str]:
    if not ids:
        return set()
    rows = store.query(
        "SELECT DISTINCT run_id FROM drift_results WHERE project = {p:String} "
        "AND model = {m:String} AND run_id IN {ids:Array(String)}",
        {"p": project, "m": model, "ids": list(ids)},
    ).to_pylist()
    return {str(r["run_id"]) for r in rows}


def backfill(
    store: Store,
    model: str,
    start: datetime,
    end: datetime,
    *,
    every: str | float | timedelta | None = None,
    count: int | None = None,
    project: str = "default",
    version: str = "",
    slot: str = "",
    segment: Segment = (),
    by_tag: str = "",
    max_values: int = MAX_SEGMENT_VALUES,
    baseline_version: int | None = None,
    config: DriftConfig | None = None,
    replace_stored: bool = False,
    max_windows: int = MAX_WINDOWS,
    detectors: bool = True,
) -> Backfill:
    """Run drift, then the other detectors, over each consecutive window of ``[start, end)``
    and store every window's results.

    Give ``every`` (time windows) or ``count`` (windows of that many predictions). With
    ``by_tag``, each value of that tag in the whole range gets its own series of windows. A
    window whose run id (:func:`run_id`) is already stored is skipped, so a re-run stores
    nothing twice; ``replace_stored`` recomputes and replaces those runs instead (after late
    data arrived, say). ``detectors=False`` computes and stores drift only. A detector beside
    drift that fails on a window is listed in that window's ``Detection.failures``; the
    backfill goes on.

    Raises:
        ValueError: a bad argument, named (``every``, ``count``, ``by_tag``, ...).
        LookupError: the model has no baseline (of ``baseline_version``).
    """
    if (every is None) == (count is None):
        raise ValueError("every, count: give exactly one (time windows or prediction counts)")
    if end <= start:
        raise ValueError("end: must be after start")
    config = config or DriftConfig()
    baseline = get_baseline(store, model, baseline_version, project)
    if baseline is None:
        raise LookupError(f"model {model!r} has no baseline; register one first")
    whole = Window(model, start, end, project, version, slot, segment)
    series = segment_windows(store, whole, by_tag, max_values) if by_tag else [whole]
    windows: list[Window] = []
    empty: list[Window] = []
    for base in series:
        if every is not None:
            length = parse_every(every)
            counts = _time_counts(store, base, length)
            for i, w in enumerate(time_windows(base, length, max_windows)):
                (windows if counts.get(i) else empty).append(w)
        else:
            windows.extend(count_windows(store, base, count or 0, max_windows))
        if len(windows) + len(empty) > max_windows:
            raise ValueError(
                f"by_tag: {len(series)} values of {by_tag!r} make more than {max_windows} "
                "windows; use longer windows, a shorter range or fewer values"
            )
    ids = [run_id(w, baseline.baseline_id, config) for w in windows]
    stored = set() if replace_stored else _stored_ids(store, project, model, ids)
    runs: list[DriftRun] = []
    skipped: list[Window] = []
    found: list[Detection] = []
    for w, rid in zip(windows, ids, strict=True):
        if rid in stored:
            skipped.append(w)
            continue
        run = replace(run_drift(store, baseline, w, config), run_id=rid)
        store_run(store, run, replace=replace_stored)
        runs.append(run)
        if detectors:
            detection = detect_window(store, w, baseline, run)
            store_detection(store, rid, detection, replace=replace_stored)
            found.append(detection)
    return Backfill(tuple(windows), tuple(runs), tuple(skipped), tuple(empty), tuple(found))
