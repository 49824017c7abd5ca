"""Admin routes: baselines, on-demand detection, API keys."""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
from fastapi import APIRouter, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from keelwatch.detectors import (
    MAX_SEGMENT_VALUES,
    MAX_WINDOWS,
    Backfill,
    BaselineError,
    DriftRun,
    list_baselines,
    parse_every,
    register_baseline,
    segment_of,
)
from keelwatch.detectors._sql import Segment

from ._body import read_body
from ._keys import ROLES, ApiKey
from ._service import DetectionOutcome, NoBaseline
from ._state import caller, state

__all__ = ["router", "run_to_json"]

router = APIRouter()


def _time(value: Any, field: str) -> datetime:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(float(value), tz=timezone.utc)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError as exc:
            raise HTTPException(
                422, f"{field}: not an ISO-8601 time or UNIX seconds: {value!r}"
            ) from exc
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    raise HTTPException(422, f"{field}: is required (ISO-8601 time or UNIX seconds)")


async def _json(request: Request) -> Any:
    shared = state(request)
    body = await read_body(
        request, shared.config.max_body_bytes, shared.config.max_decompressed_bytes
    )
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise HTTPException(400, f"body is not valid JSON: {exc}") from exc


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


@router.post("/v1/baselines", tags=["baselines"])
async def add_baseline(
    request: Request, model: str, format: str = "csv", created_by: str = ""
) -> dict[str, Any]:
    """Register a baseline for ``model`` from a CSV or parquet body."""
    if format not in ("csv", "parquet"):
        raise HTTPException(422, f"format: must be csv or parquet, got {format!r}")
    shared = state(request)
    body = await read_body(
        request, shared.config.max_body_bytes, shared.config.max_decompressed_bytes
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"baseline.{format}"
        path.write_bytes(body)
        try:
            baseline = await run_in_threadpool(
                register_baseline,
                shared.store,
                model,
                path,
                created_by=created_by,
                project=caller(request).project,
            )
        except BaselineError as exc:
            raise HTTPException(422, str(exc)) from exc
    return {
        "baseline_id": baseline.baseline_id,
        "model": model,
        "version": baseline.version,
        "rows": baseline.row_count,
        "features": {f.name: f.kind for f in baseline.features},
    }


@router.get("/v1/baselines", tags=["baselines"])
def get_baselines(request: Request, model: str = "") -> list[dict[str, Any]]:
    """Registered baselines with their lineage."""
    return [
        {
            "baseline_id": b.baseline_id,
            "model": b.model,
            "version": b.version,
            "source": b.source,
            "content_hash": b.content_hash,
            "rows": b.row_count,
            "created_by": b.created_by,
            "created_at": b.created_at.isoformat(),
            "features": [
                {
                    "name": f.name,
                    "kind": f.kind,
                    "count": f.count,
                    "nulls": f.nulls,
                    "min": f.min,
                    "max": f.max,
                    "mean": f.mean,
                    "std": f.std,
                    "categories": f.categories,
                }
                for f in b.features
            ],
        }
        for b in list_baselines(state(request).store, model or None, caller(request).project)
    ]


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


def _string(spec: dict[str, Any], field: str) -> str:
    value = spec.get(field)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise HTTPException(422, f"{field}: must be a string, got {value!r}")
    return value


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
    start = epoch if start_value is None and count and not backfill else _time(start_value, "start")
    end = _time(spec.get("end"), "end")
    if end <= start:
        raise HTTPException(422, "end: must be after start")
    raw_segment = spec.get("segment") or {}
    if not isinstance(raw_segment, dict):
        raise HTTPException(422, f"segment: must be an object of tag values, got {raw_segment!r}")
    by_tag = _string(spec, "by_tag")
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
        _string(spec, "version"),
        _string(spec, "slot"),
        segment,
        by_tag,
        _whole(spec, "max_values", MAX_SEGMENT_VALUES, MAX_WINDOWS),
        every,
        count,
        backfill,
        _flag(spec, "replace"),
    )


def _outcome_to_json(outcome: DetectionOutcome) -> dict[str, Any]:
    return {
        **run_to_json(outcome.run),
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
    """A backfill's summary: one line per window, results kept in ``drift_results``."""
    computed = {(r.window.start, r.window.segment): r for r in done.runs}
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
    ``backfill`` (store every window's run, no alerts) and ``replace`` (recompute stored runs).
    """
    spec = _detect_spec(await _json(request))
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


def key_to_json(record: ApiKey) -> dict[str, Any]:
    """A key's record as JSON (never its hash)."""
    return {
        "key_id": record.key_id,
        "project": record.project,
        "role": record.role,
        "name": record.name,
        "created_at": record.created_at.isoformat(),
        "revoked_at": record.revoked_at.isoformat() if record.revoked_at else None,
    }


@router.post("/v1/keys", tags=["keys"])
async def create_key(request: Request) -> dict[str, Any]:
    """Create an API key: ``{"role": "ingest"|"read"|"admin", "name": "..."}``.

    The key is in the answer only. A project admin key creates keys for its own project; the
    bootstrap key (or dev mode) may name any ``project``.
    """
    spec = await _json(request)
    if not isinstance(spec, dict):
        raise HTTPException(422, "body must be a JSON object")
    who = caller(request)
    project = spec.get("project") or who.project
    if who.key_id and project != who.project:
        raise HTTPException(403, "a project's admin key creates keys for that project only")
    role, name = spec.get("role"), spec.get("name", "")
    if role not in ROLES:
        raise HTTPException(422, f"role: must be one of {sorted(ROLES)}")
    if not isinstance(project, str) or not isinstance(name, str):
        raise HTTPException(422, "project and name must be strings")
    try:
        new = await run_in_threadpool(state(request).keys.create, project, role, name)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from exc
    return {"key": new.key, **key_to_json(new.record)}


@router.get("/v1/keys", tags=["keys"])
async def get_keys(request: Request) -> list[dict[str, Any]]:
    """The keys of the caller's project (all projects for the bootstrap key)."""
    who = caller(request)
    found = await run_in_threadpool(
        state(request).keys.records, who.project if who.key_id else None
    )
    return [key_to_json(k) for k in found]


@router.delete("/v1/keys/{key_id}", tags=["keys"])
async def revoke_key(request: Request, key_id: str) -> dict[str, Any]:
    """Revoke a key; every server refuses it within the key cache's TTL (2 s)."""
    shared, who = state(request), caller(request)
    known = {k.key_id: k for k in await run_in_threadpool(shared.keys.records)}
    if key_id not in known or (who.key_id and known[key_id].project != who.project):
        raise HTTPException(404, f"no key {key_id!r}")
    return key_to_json(await run_in_threadpool(shared.keys.revoke, key_id))
