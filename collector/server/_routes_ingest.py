"""Ingest routes: predictions and outcomes as JSON or Arrow IPC streams; OTLP traces."""

from __future__ import annotations

import threading
import time
from typing import Any

import orjson
from fastapi import APIRouter, HTTPException, Request, Response
from starlette.concurrency import run_in_threadpool

from ._arrow_ingest import UnreadableBody, parse_arrow
from ._body import inflate, read_body, read_raw
from ._ingest import Batch, batch_token, parse_outcomes, parse_predictions
from ._json_fast import fast_predictions
from ._openapi import ARROW_STREAM, INGEST_RESPONSES, OUTCOMES_BODY, PREDICTIONS_BODY
from ._otlp import PROTOBUF, encode_response, parse_otlp
from ._state import AppState, caller, state

__all__ = ["router"]

router = APIRouter(tags=["ingest"])

#: Parsing holds the GIL, so parsing several bodies at once gains nothing; with dozens of
#: requests in worker threads it cost a third more CPU per record (GIL hand-offs, a larger
#: working set) than parsing them one after another. Group commit waits outside this lock.
_PARSING = threading.Lock()


def _parse(kind: str, body: bytes, content_type: str, project: str) -> Batch:
    now = time.time()
    if content_type == ARROW_STREAM:
        try:
            return parse_arrow(kind, body, project, now)
        except UnreadableBody as exc:
            raise HTTPException(400, str(exc)) from exc
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from exc
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise HTTPException(400, f"body is not valid JSON: {exc}") from exc
    if kind == "predictions":
        fast = fast_predictions(payload, project, now)
        if fast is not None:
            return fast
    parse = parse_predictions if kind == "predictions" else parse_outcomes
    try:
        return parse(payload, project, now)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from exc


def _accept(
    kind: str, body: bytes, gzipped: bool, content_type: str, project: str, shared: AppState
) -> Batch:
    """Inflate, parse, validate and write in one worker-thread hop (the event loop only moves
    bytes)."""
    if gzipped:
        body = inflate(body, shared.config.max_decompressed_bytes)  # zlib releases the GIL
    with _PARSING:
        batch = _parse(kind, body, content_type, project)
    if batch.table.num_rows:
        shared.writer.write(kind, batch.table, batch_token(kind, project, body))
    return batch


async def ingest(request: Request, kind: str) -> dict[str, Any]:
    """Validate a batch, hand the accepted records to the writer, answer per record."""
    shared = state(request)
    project = caller(request).project
    body, gzipped = await read_raw(request, shared.config.max_body_bytes)
    content_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    batch = await run_in_threadpool(_accept, kind, body, gzipped, content_type, project, shared)
    shared.metrics.records.labels(kind).inc(batch.table.num_rows)
    shared.metrics.rejected.labels(kind).inc(len(batch.rejected))
    return {
        "accepted": batch.table.num_rows,
        "rejected": [
            {"index": r.index, "field": r.field, "error": r.error} for r in batch.rejected
        ],
    }


@router.post("/v1/predictions", openapi_extra=PREDICTIONS_BODY, responses=INGEST_RESPONSES)
async def ingest_predictions(request: Request) -> dict[str, Any]:
    """Store a batch of prediction records (see docs/ingest-api.md)."""
    return await ingest(request, "predictions")


@router.post("/v1/outcomes", openapi_extra=OUTCOMES_BODY, responses=INGEST_RESPONSES)
async def ingest_outcomes(request: Request) -> dict[str, Any]:
    """Store delayed labels and business outcomes, joined to predictions by id."""
    return await ingest(request, "outcomes")


@router.post(
    "/v1/traces",
    response_class=Response,
    responses={
        200: {
            "description": "ExportTraceServiceResponse, in the request's encoding",
            "content": {PROTOBUF: {}, "application/json": {}},
        },
        415: {"description": "not application/x-protobuf or application/json"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "An OTLP ExportTraceServiceRequest (OTLP/HTTP, protobuf or JSON).",
            "content": {
                PROTOBUF: {"schema": {"type": "string", "format": "binary"}},
                "application/json": {"schema": {"type": "object"}},
            },
        }
    },
)
async def ingest_traces(request: Request) -> Response:
    """OpenTelemetry spans over OTLP/HTTP into the ``spans`` table."""
    shared = state(request)
    project = caller(request).project
    content_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if content_type not in (PROTOBUF, "application/json"):
        raise HTTPException(415, "send application/x-protobuf or application/json (OTLP/HTTP)")
    body = await read_body(
        request, shared.config.max_body_bytes, shared.config.max_decompressed_bytes
    )
    try:
        batch = await run_in_threadpool(parse_otlp, body, content_type, project)
    except UnreadableBody as exc:
        raise HTTPException(400, str(exc)) from exc
    if batch.table.num_rows:
        token = batch_token("spans", project, body)
        await run_in_threadpool(shared.writer.write, "spans", batch.table, token)
    shared.metrics.records.labels("spans").inc(batch.table.num_rows)
    shared.metrics.rejected.labels("spans").inc(batch.rejected)
    return Response(encode_response(batch, content_type), media_type=content_type)
