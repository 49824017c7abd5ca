"""JSON bodies of the admin routes and their fields, with errors naming the field."""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any

import orjson
from fastapi import HTTPException
from starlette.requests import Request

from ._body import read_body
from ._state import state

__all__ = ["read_json", "read_json_object", "string_field", "time_field"]


async def read_json(request: Request) -> Any:
    """The body as JSON, within the server's body limits (400 if it is not JSON)."""
    shared = state(request)
    body = await read_body(
        request, shared.config.max_body_bytes, shared.config.max_decompressed_bytes
    )
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise HTTPException(400, f"body is not valid JSON: {exc}") from exc


async def read_json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object (422 for any other JSON value)."""
    spec = await read_json(request)
    if not isinstance(spec, dict):
        raise HTTPException(422, "body must be a JSON object")
    return spec


def string_field(spec: dict[str, Any], field: str) -> str:
    """An optional string field; absent or null is ``""``."""
    value = spec.get(field)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise HTTPException(422, f"{field}: must be a string, got {value!r}")
    return value


def time_field(value: Any, field: str) -> datetime:
    """A time given as ISO-8601 (UTC when it has no offset) or as UNIX seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise HTTPException(422, f"{field}: must be a finite number of UNIX seconds")
        try:
            return datetime.fromtimestamp(float(value), tz=timezone.utc)
        except (OverflowError, OSError, ValueError) as exc:
            raise HTTPException(422, f"{field}: out of range: {value!r}") from exc
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError as exc:
            raise HTTPException(
                422, f"{field}: not an ISO-8601 time or UNIX seconds: {value!r}"
            ) from exc
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    raise HTTPException(422, f"{field}: is required (ISO-8601 time or UNIX seconds)")
