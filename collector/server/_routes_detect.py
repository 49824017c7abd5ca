"""Detection on demand: POST /v1/detect (one window, per tag value, or a backfill)."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, is_dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from keelwatch.detectors import (
    MAX_SEGMENT_VALUES,
    MAX_WINDOWS,
    Backfill,
    DriftRun,
    parse_every,
    segment_of,
)
from keelwatch.detectors._sql import Segment

from ._fields import read_json, string_field, time_field
from ._service import DetectionOutcome, NoBaseline
from ._state import state

__all__ = ["router", "run_to_json"]

router = APIRouter()


def _finite(value: float | None) -> float | None:
    """JSON has no NaN or infinity: a score that is not finite is reported as null."""
    return value if value is not None and math.isfinite(value) else None


def run_to_json(run: DriftRun) -> dict[str, Any]:
    """A drift run as plain JSON."""
    return {
        "run_id": run.run_id,
        "model": run.model,
        "baseline_id": run.baseline_id,
        "window": {
            "start": run.window.start.isoformat(),
            "end": run.window.end.isoformat(),
            "version": run.window.version,
            "slot": run.window.slot,
            "segment": dict(run.window.segment),
            "kind": run.window.kind,
            "count": run.window.count,
        },
        "n_current": run.n_current,
        "drift_share": run.drift_share,
        "drift_share_threshold": run.drift_share_threshold,
        "dataset_drift": run.dataset_drift,
        "results": [
            {
                "feature": r.feature,
                "kind": r.kind,
                "method": r.method,
                "score": _finite(r.score),
                "p_value": _finite(r.p_value),
                "p_adjusted": _finite(r.p_adjusted),
                "threshold": r.threshold,
                "drifted": r.drifted,
                "deciding": r.deciding,
                "n_reference": r.n_reference,
                "n_current": r.n_current,
            }
            for r in run.results
        ],
    }


@dataclass(frozen=True)
class _DetectSpec:
    """A checked ``POST /v1/detect`` body."""

    model: str
    start: datetime
    end: datetime
    version: str
    slot: str
    segment: Segment
    by_tag: str
    max_values: int
    every: timedelta | None
    count: int
    backfill: bool
    replace: bool


def _flag(spec: dict[str, Any], field: str) -> bool:
    value = spec.get(field, False)
    if not isinstance(value, bool):
        raise HTTPException(422, f"{field}: must be true or false, got {value!r}")
    return value


def _whole(spec: dict[str, Any], field: str, default: int, most: int) -> int:
    value = spec.get(field)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
        raise HTTPException(422, f"{field}: must be a whole number from 1 to {most}, got {value!r}")
    return value


def _detect_spec(spec: Any) -> _DetectSpec:
    if not isinstance(spec, dict):
        raise HTTPException(422, "body must be a JSON object")
    model = spec.get("model")
    if not isinstance(model, str) or not model:
        raise HTTPException(422, "model: is required")
    backfill = _flag(spec, "backfill")
    count = _whole(spec, "count", 0, 10_000_000)
    every = None
    if spec.get("every") is not None:
        try:
            every = parse_every(spec["every"])
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from exc
    if every is not None and count:
        raise HTTPException(422, "every, count: give one, not both")
    if backfill and every is None and not count:
        raise HTTPException(422, "backfill: needs every or count to cut the range into windows")
    if every is not None and not backfill:
        raise HTTPException(
            422, "every: cuts [start, end) into windows for a backfill; set backfill to true"
        )
    # The N most recent predictions need no lower bound unless one is given.
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    start_value = spec.get("start")
    start = (
        epoch
        if start_value is None and count and not backfill
        else time_field(start_value, "start")
    )
    end = time_field(spec.get("end"), "end")
    if end <= start:
        raise HTTPException(422, "end: must be after start")
    raw_segment = spec.get("segment") or {}
    if not isinstance(raw_segment, dict):
        raise HTTPException(422, f"segment: must be an object of tag values, got {raw_segment!r}")
    by_tag = string_field(spec, "by_tag")
    try:
        segment = segment_of(raw_segment)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from exc
    if by_tag and by_tag in raw_segment:
        raise HTTPException(422, f"by_tag: tag {by_tag!r} is already fixed by the segment")
    return _DetectSpec(
        model,
        start,
        end,
        string_field(spec, "version"),
        string_field(spec, "slot"),
        segment,
        by_tag,
        _whole(spec, "max_values", MAX_SEGMENT_VALUES, MAX_WINDOWS),
        every,
        count,
        backfill,
        _flag(spec, "replace"),
    )


def _plain(value: Any) -> Any:
    """A detector's result as JSON values: dataclasses as objects, tuples as lists, times in
    ISO-8601, numbers that are not finite as null."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float):
        return _finite(value)
    if hasattr(value, "item"):  # a NumPy scalar
        return _plain(value.item())
    return value


#: The detectors beside drift that a one-window detection returns (``Detection``'s fields).
_OTHERS = (
    "quality",
    "operations",
    "labels",
    "classification",
    "calibration",
    "regression",
    "cost",
    "failures",
)


def _outcome_to_json(outcome: DetectionOutcome) -> dict[str, Any]:
    others = {}
    if outcome.detection is not None:
        others["detectors"] = {name: _plain(getattr(outcome.detection, name)) for name in _OTHERS}
    return {
        **run_to_json(outcome.run),
        **others,
        "alerts": [
            {
                "rule": a.rule,
                "action": a.action,
                "summary": a.summary,
                "webhook": a.delivery.url,
                "status": a.delivery.status,
                "delivered": a.delivery.delivered,
                "webhook_id": a.delivery.msg_id,
            }
            for a in outcome.alerts
        ],
    }


def _backfill_to_json(model: str, done: Backfill) -> dict[str, Any]:
    """A backfill's summary: one line per window, results kept in ``drift_results`` and
    ``detector_results`` (``failed_detectors``: those beside drift that failed there)."""
    computed = {(r.window.start, r.window.segment): r for r in done.runs}
    failed = {d.window: [f.detector for f in d.failures] for d in done.detections}
    skipped = {(w.start, w.segment) for w in done.skipped}
    windows = []
    for w in sorted((*done.windows, *done.empty), key=lambda w: (w.segment, w.start)):
        run = computed.get((w.start, w.segment))
        status = "stored" if run else "skipped" if (w.start, w.segment) in skipped else "empty"
        windows.append(
            {
                "start": w.start.isoformat(),
                "end": w.end.isoformat(),
                "segment": dict(w.segment),
                "status": status,
                "run_id": run.run_id if run else None,
                "n_current": run.n_current if run else None,
                "drift_share": run.drift_share if run else None,
                "dataset_drift": run.dataset_drift if run else None,
                "drifted": [r.feature for r in run.drifted_features] if run else [],
                "failed_detectors": failed.get(w, []),
            }
        )
    return {
        "model": model,
        "backfill": True,
        "stored": len(done.runs),
        "skipped": len(done.skipped),
        "empty": len(done.empty),
        "windows": windows,
    }


@router.post("/v1/detect", tags=["detectors"])
async def detect(request: Request) -> dict[str, Any]:
    """Run the drift detectors and alert rules on a window now, or backfill history.

    Body: ``model``, ``start``, ``end`` (ISO-8601 or UNIX seconds), optional ``version``,
    ``slot``, ``segment`` (``{"tag": "value"}``, all must match), ``by_tag`` (one run per value
    of that tag, at most ``max_values``), ``count`` (the N most recent predictions; with
    ``backfill``, consecutive windows of N), ``every`` (``"1h"`` or seconds; backfill only),
    ``backfill`` (store every window's results, drift and the other detectors, no alerts) and
    ``replace`` (recompute stored runs).
    """
    spec = _detect_spec(await read_json(request))
    monitoring = state(request).monitoring
    try:
        if spec.backfill:
            done = await run_in_threadpool(
                lambda: monitoring.backfill(
                    spec.model,
                    spec.start,
                    spec.end,
                    every=spec.every,
                    count=spec.count or None,
                    version=spec.version,
                    slot=spec.slot,
                    segment=spec.segment,
                    by_tag=spec.by_tag,
                    max_values=spec.max_values,
                    replace=spec.replace,
                )
            )
            return _backfill_to_json(spec.model, done)
        if spec.by_tag:
            outcomes = await run_in_threadpool(
                monitoring.detect_by_tag,
                spec.model,
                spec.start,
                spec.end,
                spec.by_tag,
                spec.version,
                spec.slot,
                spec.segment,
                spec.count,
                spec.max_values,
            )
            return {
                "model": spec.model,
                "by_tag": spec.by_tag,
                "runs": [_outcome_to_json(o) for o in outcomes],
            }
        outcome = await run_in_threadpool(
            monitoring.detect,
            spec.model,
            spec.start,
            spec.end,
            spec.version,
            spec.slot,
            spec.segment,
            spec.count,
        )
    except NoBaseline as exc:
        raise HTTPException(404, str(exc)) from exc
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from exc
    return _outcome_to_json(outcome)
