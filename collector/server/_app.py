"""The collector server: ingest, detection, the store's ClickHouse endpoint, metrics, health."""

from __future__ import annotations

import base64
import hmac
import ipaddress
import json
import tempfile
import time
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson
from apscheduler.schedulers.background import BackgroundScheduler
from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from keelwatch.detectors import BaselineError, DriftRun, list_baselines, register_baseline
from keelwatch.store import EmbeddedStore, Store, StoreError, open_store

from ._bridge import BridgeError, prepare
from ._config import ServerConfig
from ._ingest import Batch, batch_token, parse_outcomes, parse_predictions
from ._metrics import ServerMetrics
from ._service import Monitoring, NoBaseline

__all__ = ["create_app", "run_to_json"]


def _loopback(request: Request) -> bool:
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host in ("localhost", "testclient")


def _presented_key(request: Request) -> str:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    if auth.lower().startswith("basic "):
        try:
            return base64.b64decode(auth[6:]).decode().partition(":")[2]
        except (ValueError, UnicodeDecodeError):
            return ""
    return request.headers.get("x-clickhouse-key", "")


async def _body(request: Request, config: ServerConfig) -> bytes:
    """The request body, decompressed, refused with 413 past the configured sizes."""
    raw = bytearray()
    async for chunk in request.stream():
        raw.extend(chunk)
        if len(raw) > config.max_body_bytes:
            raise HTTPException(413, f"body larger than {config.max_body_bytes} bytes")
    if request.headers.get("content-encoding", "").lower() != "gzip":
        return bytes(raw)
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(bytes(raw), config.max_decompressed_bytes + 1)
    except zlib.error as exc:
        raise HTTPException(400, f"body is not valid gzip: {exc}") from exc
    if len(data) > config.max_decompressed_bytes or inflater.unconsumed_tail:
        raise HTTPException(
            413, f"decompressed body larger than {config.max_decompressed_bytes} bytes"
        )
    return data


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
        },
        "n_current": run.n_current,
        "drift_share": run.drift_share,
        "results": [
            {
                "feature": r.feature,
                "kind": r.kind,
                "method": r.method,
                "score": None if r.score != r.score else r.score,
                "p_value": r.p_value,
                "threshold": r.threshold,
                "drifted": r.drifted,
                "deciding": r.deciding,
                "n_reference": r.n_reference,
                "n_current": r.n_current,
            }
            for r in run.results
        ],
    }


def create_app(config: ServerConfig, store: Store | None = None) -> FastAPI:
    """The ASGI app. It opens (and closes) the configured store unless one is given."""
    metrics = ServerMetrics()
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = store is None
        state["store"] = store or open_store(config.data_dir, config.clickhouse_url or None)
        state["monitoring"] = Monitoring(state["store"], config, metrics)
        scheduler = BackgroundScheduler(timezone="UTC")
        if config.detect_interval_s > 0:
            scheduler.add_job(
                state["monitoring"].scheduled,
                "interval",
                seconds=config.detect_interval_s,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=int(config.detect_interval_s) or 1,
            )
            scheduler.start()
        try:
            yield
        finally:
            if scheduler.running:
                scheduler.shutdown(wait=True)
            if owned:
                state["store"].close()

    app = FastAPI(title="keelwatch collector", version="0.1.0", lifespan=lifespan)

    @app.middleware("http")
    async def authenticate(request: Request, call_next: Any) -> Response:
        if request.url.path in ("/healthz", "/ping"):
            return await call_next(request)
        if config.api_key:
            if not hmac.compare_digest(_presented_key(request).encode(), config.api_key.encode()):
                return JSONResponse({"detail": "missing or invalid API key"}, status_code=401)
        elif not _loopback(request):
            return JSONResponse(
                {"detail": "no API key configured: loopback clients only"}, status_code=403
            )
        return await call_next(request)

    def _store() -> Store:
        return state["store"]  # type: ignore[no-any-return,unused-ignore]

    async def _ingest(request: Request, kind: str) -> dict[str, Any]:
        body = await _body(request, config)
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise HTTPException(400, f"body is not valid JSON: {exc}") from exc
        parse = parse_predictions if kind == "predictions" else parse_outcomes
        try:
            batch: Batch = parse(payload, config.project, time.time())
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from exc
        if batch.table.num_rows:
            token = batch_token(kind, config.project, body)
            try:
                await run_in_threadpool(_store().insert, kind, batch.table, token)
            except StoreError as exc:
                raise HTTPException(
                    503, "store unavailable, retry later", headers={"Retry-After": "5"}
                ) from exc
        metrics.records.labels(kind).inc(batch.table.num_rows)
        metrics.rejected.labels(kind).inc(len(batch.rejected))
        return {
            "accepted": batch.table.num_rows,
            "rejected": [
                {"index": r.index, "field": r.field, "error": r.error} for r in batch.rejected
            ],
        }

    @app.post("/v1/predictions")
    async def ingest_predictions(request: Request) -> dict[str, Any]:
        """Store a batch of prediction records (see docs/ingest-api.md)."""
        return await _ingest(request, "predictions")

    @app.post("/v1/outcomes")
    async def ingest_outcomes(request: Request) -> dict[str, Any]:
        """Store delayed labels and business outcomes, joined to predictions by id."""
        return await _ingest(request, "outcomes")

    @app.post("/v1/baselines")
    async def add_baseline(
        request: Request, model: str, format: str = "csv", created_by: str = ""
    ) -> dict[str, Any]:
        """Register a baseline for ``model`` from a CSV or parquet body."""
        if format not in ("csv", "parquet"):
            raise HTTPException(422, f"format: must be csv or parquet, got {format!r}")
        body = await _body(request, config)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"baseline.{format}"
            path.write_bytes(body)
            try:
                baseline = await run_in_threadpool(
                    register_baseline,
                    _store(),
                    model,
                    path,
                    created_by=created_by,
                    project=config.project,
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

    @app.get("/v1/baselines")
    def get_baselines(model: str = "") -> list[dict[str, Any]]:
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
            for b in list_baselines(_store(), model or None, config.project)
        ]

    @app.post("/v1/detect")
    async def detect(request: Request) -> dict[str, Any]:
        """Run the drift detectors and alert rules on a window now."""
        try:
            spec = orjson.loads(await _body(request, config))
        except orjson.JSONDecodeError as exc:
            raise HTTPException(400, f"body is not valid JSON: {exc}") from exc
        if (
            not isinstance(spec, dict)
            or not isinstance(spec.get("model"), str)
            or not spec["model"]
        ):
            raise HTTPException(422, "model: is required")
        start, end = _time(spec.get("start"), "start"), _time(spec.get("end"), "end")
        if end <= start:
            raise HTTPException(422, "end: must be after start")
        try:
            outcome = await run_in_threadpool(
                state["monitoring"].detect,
                spec["model"],
                start,
                end,
                str(spec.get("version") or ""),
                str(spec.get("slot") or ""),
            )
        except NoBaseline as exc:
            raise HTTPException(404, str(exc)) from exc
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

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        """Liveness."""
        return {"status": "ok"}

    @app.get("/metrics")
    def prometheus_metrics() -> Response:
        """Prometheus exposition."""
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/ping", include_in_schema=False)
    def ping() -> PlainTextResponse:
        return PlainTextResponse("Ok.\n")

    @app.api_route("/", methods=["GET", "POST"], include_in_schema=False)
    async def clickhouse(request: Request) -> Response:
        """ClickHouse's HTTP protocol (reads only) over the embedded store."""
        current = _store()
        if not isinstance(current, EmbeddedStore):
            raise HTTPException(404, "the store is a ClickHouse server: query it directly")
        params = dict(request.query_params)
        query = params.get("query", "")
        if request.method == "POST":
            query = f"{query} {(await _body(request, config)).decode('utf-8', 'replace')}"
        try:
            sql, fmt, bound = prepare(query, params)
            data = await run_in_threadpool(current.raw, sql, fmt, bound)
        except BridgeError as exc:
            return PlainTextResponse(str(exc), status_code=exc.status)
        except StoreError as exc:
            return PlainTextResponse(str(exc), status_code=400)
        return Response(
            data,
            media_type="application/octet-stream",
            headers={
                "X-ClickHouse-Format": fmt,
                "X-ClickHouse-Summary": json.dumps({"read_rows": "0"}),
            },
        )

    return app
