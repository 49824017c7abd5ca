"""Cost routes: record and list prices (admin, read) and price a window (read).

``POST /v1/prices`` takes one price as JSON, ``{"kind": "compute", ...}`` or ``{"kind":
"tokens", ...}``; fields are checked strictly (an unknown field is refused, so a misspelt
``per_secnd`` cannot silently record a price of 0). ``GET /v1/cost`` and ``POST /v1/cost`` price
a window; the GET form exists because the authentication middleware grants POSTs under ``/v1/``
to admin keys only, and a read key must be able to see cost.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from keelwatch.detectors import (
    ComputePrice,
    Cost,
    PriceError,
    TokenPrice,
    Window,
    cost,
    list_compute_prices,
    list_token_prices,
    set_compute_price,
    set_token_price,
)

from ._fields import read_json_object, string_field, time_field
from ._state import caller, state

__all__ = ["compute_price_to_json", "cost_to_json", "router", "token_price_to_json"]

router = APIRouter()

_COMMON = frozenset({"kind", "model", "effective_from", "currency", "recorded_by"})
_FIELDS = {
    "compute": _COMMON | {"version", "slot", "per_second", "per_prediction"},
    "tokens": _COMMON | {"prompt_per_million", "completion_per_million"},
}
_WINDOW_FIELDS = frozenset({"model", "start", "end", "version", "slot"})


def compute_price_to_json(price: ComputePrice) -> dict[str, Any]:
    """A compute price as JSON."""
    return {
        "kind": "compute",
        "model": price.model,
        "version": price.version,
        "slot": price.slot,
        "effective_from": price.effective_from.isoformat(),
        "per_second": price.per_second,
        "per_prediction": price.per_prediction,
        "currency": price.currency,
        "recorded_by": price.recorded_by,
        "recorded_at": price.recorded_at.isoformat(),
    }


def token_price_to_json(price: TokenPrice) -> dict[str, Any]:
    """A token price as JSON."""
    return {
        "kind": "tokens",
        "model": price.model,
        "effective_from": price.effective_from.isoformat(),
        "prompt_per_million": price.prompt_per_million,
        "completion_per_million": price.completion_per_million,
        "currency": price.currency,
        "recorded_by": price.recorded_by,
        "recorded_at": price.recorded_at.isoformat(),
    }


def cost_to_json(row: Cost) -> dict[str, Any]:
    """One (version, slot) row of a window's cost as JSON."""
    return {
        "version": row.version,
        "slot": row.slot,
        "currency": row.currency,
        "predictions": row.predictions,
        "priced": row.priced,
        "unpriced": row.unpriced,
        "compute_priced": row.compute_priced,
        "compute_seconds": row.compute_seconds,
        "compute_cost": row.compute_cost,
        "compute_cost_mean": row.compute_cost_mean,
        "prompt_tokens": row.prompt_tokens,
        "completion_tokens": row.completion_tokens,
        "token_priced": row.token_priced,
        "token_cost": row.token_cost,
        "total_cost": row.total_cost,
    }


@router.post("/v1/prices", tags=["cost"])
async def add_price(request: Request) -> dict[str, Any]:
    """Record a compute or token price; one with the same key and ``effective_from`` is replaced.

    Compute: ``{"kind": "compute", "model", "version"?, "slot"?, "per_second",
    "per_prediction"?, "effective_from"?, "currency"?}``. Tokens: ``{"kind": "tokens", "model",
    "prompt_per_million", "completion_per_million", "effective_from"?, "currency"?}``. Times are
    ISO-8601 (UTC if naive) or UNIX seconds; ``effective_from`` defaults to now.
    """
    spec = await read_json_object(request)
    kind = spec.get("kind")
    if kind not in _FIELDS:
        raise HTTPException(422, f"kind: must be one of {sorted(_FIELDS)}, got {kind!r}")
    unknown = sorted(set(spec) - _FIELDS[kind])
    if unknown:
        raise HTTPException(422, f"{unknown[0]}: unknown field for a {kind} price")
    who = caller(request)
    common: dict[str, Any] = {
        "project": who.project,
        "currency": spec.get("currency", "USD"),
        "recorded_by": string_field(spec, "recorded_by")
        or (f"key {who.key_id}" if who.key_id else ""),
    }
    if spec.get("effective_from") is not None:
        common["effective_from"] = time_field(spec["effective_from"], "effective_from")
    for field in ("per_second", "prompt_per_million", "completion_per_million"):
        if field in _FIELDS[kind] and field not in spec:
            raise HTTPException(422, f"{field}: is required for a {kind} price")
    store = state(request).store
    try:
        if kind == "compute":
            price = await run_in_threadpool(
                lambda: set_compute_price(
                    store,
                    string_field(spec, "model"),
                    spec["per_second"],
                    spec.get("per_prediction", 0.0),
                    version=string_field(spec, "version"),
                    slot=string_field(spec, "slot"),
                    **common,
                )
            )
            return compute_price_to_json(price)
        tokens = await run_in_threadpool(
            lambda: set_token_price(
                store,
                string_field(spec, "model"),
                spec["prompt_per_million"],
                spec["completion_per_million"],
                **common,
            )
        )
        return token_price_to_json(tokens)
    except PriceError as exc:
        raise HTTPException(422, str(exc)) from exc


@router.get("/v1/prices", tags=["cost"])
async def get_prices(request: Request, model: str = "") -> dict[str, Any]:
    """The project's current prices (corrections applied), optionally of one model."""
    store, project = state(request).store, caller(request).project
    compute = await run_in_threadpool(list_compute_prices, store, model or None, project)
    tokens = await run_in_threadpool(list_token_prices, store, model or None, project)
    return {
        "compute": [compute_price_to_json(p) for p in compute],
        "tokens": [token_price_to_json(p) for p in tokens],
    }


async def _cost(request: Request, spec: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(spec) - _WINDOW_FIELDS)
    if unknown:
        raise HTTPException(422, f"{unknown[0]}: unknown field")
    model = spec.get("model")
    if not isinstance(model, str) or not model:
        raise HTTPException(422, "model: is required")
    start, end = time_field(spec.get("start"), "start"), time_field(spec.get("end"), "end")
    if end <= start:
        raise HTTPException(422, "end: must be after start")
    window = Window(
        model,
        start,
        end,
        project=caller(request).project,
        version=string_field(spec, "version"),
        slot=string_field(spec, "slot"),
    )
    rows = await run_in_threadpool(cost, state(request).store, window)
    return {
        "model": model,
        "window": {
            "start": start.isoformat(),
            "end": end.isoformat(),
            "version": window.version,
            "slot": window.slot,
        },
        "costs": [cost_to_json(r) for r in rows],
    }


@router.post("/v1/cost", tags=["cost"])
async def post_cost(request: Request) -> dict[str, Any]:
    """Price a window now: ``{"model", "start", "end", "version"?, "slot"?}``, one row per
    (version, slot) with counts, compute and token cost."""
    return await _cost(request, await read_json_object(request))


@router.get("/v1/cost", tags=["cost"])
async def get_cost(
    request: Request,
    model: str = "",
    start: str = "",
    end: str = "",
    version: str = "",
    slot: str = "",
) -> dict[str, Any]:
    """``POST /v1/cost`` for read keys, the window in the query string."""
    spec = {"model": model, "version": version, "slot": slot}
    for field, value in (("start", start), ("end", end)):
        if value:
            spec[field] = _number_or_text(value)
    return await _cost(request, spec)


def _number_or_text(value: str) -> Any:
    """A query-string time: UNIX seconds when it parses as a number, else ISO-8601 text."""
    try:
        return float(value)
    except ValueError:
        return value
