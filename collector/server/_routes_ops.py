"""Operations routes: liveness, readiness, metrics, and the store's ClickHouse endpoint."""

from __future__ import annotations

import json

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from keelwatch.store import EmbeddedStore, StoreError

from ._body import read_body
from ._bridge import BridgeError, prepare
from ._state import state

__all__ = ["router"]

router = APIRouter()


@router.get("/healthz", tags=["operations"])
def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/readyz", tags=["operations"], responses={503: {"description": "not ready"}})
async def readyz(request: Request) -> Response:
    """Readiness: the store answers a query (records are spooled, not lost, while it does not)."""
    shared = getattr(request.app.state, "keelwatch", None)
    if shared is None:
        return JSONResponse({"status": "starting"}, status_code=503)
    spooled = getattr(getattr(shared.writer, "spool", None), "size", 0)
    try:
        await run_in_threadpool(shared.store.query, "SELECT 1 AS ok")
    except StoreError as exc:
        return JSONResponse(
            {"status": "store unavailable", "error": str(exc), "spooled_bytes": spooled},
            status_code=503,
        )
    return JSONResponse({"status": "ready", "spooled_bytes": spooled})


@router.get("/metrics", tags=["operations"])
def prometheus_metrics(request: Request) -> Response:
    """Prometheus exposition."""
    return Response(
        generate_latest(state(request).metrics.registry), media_type=CONTENT_TYPE_LATEST
    )


@router.get("/ping", include_in_schema=False)
def ping() -> PlainTextResponse:
    return PlainTextResponse("Ok.\n")


@router.api_route("/", methods=["GET", "POST"], include_in_schema=False)
async def clickhouse(request: Request) -> Response:
    """ClickHouse's HTTP protocol (reads only) over the embedded store."""
    shared = state(request)
    current = shared.store
    if not isinstance(current, EmbeddedStore):
        raise HTTPException(404, "the store is a ClickHouse server: query it directly")
    params = dict(request.query_params)
    query = params.get("query", "")
    if request.method == "POST":
        body = await read_body(
            request, shared.config.max_body_bytes, shared.config.max_decompressed_bytes
        )
        query = f"{query} {body.decode('utf-8', 'replace')}"
    try:
        sql, fmt, bound = prepare(query, params)
        data = await run_in_threadpool(current.raw, sql, fmt, bound)
    except BridgeError as exc:
        return PlainTextResponse(str(exc), status_code=exc.status)
    except StoreError as exc:
        status = 403 if "READONLY" in str(exc) else 400
        return PlainTextResponse(str(exc), status_code=status)
    return Response(
        data,
        media_type="application/octet-stream",
        headers={
            "X-ClickHouse-Format": fmt,
            "X-ClickHouse-Summary": json.dumps({"read_rows": "0"}),
        },
    )
