"""Admin routes: baselines and API keys (detection on demand is in ``_routes_detect``)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from keelwatch.detectors import (
    BaselineError,
    list_baselines,
    register_baseline,
)

from ._body import read_body
from ._fields import read_json
from ._keys import ROLES, ApiKey
from ._state import caller, state

__all__ = ["key_to_json", "router"]

router = APIRouter()


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
    spec = await read_json(request)
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
