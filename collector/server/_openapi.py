"""OpenAPI descriptions of the ingest bodies (FastAPI cannot infer them from raw bodies)."""

from __future__ import annotations

from typing import Any

from ._ingest import MAX_FEATURES, MAX_ID_LEN, MAX_NAME_LEN, MAX_TEXT_LEN

__all__ = ["ARROW_STREAM", "INGEST_RESPONSES", "OUTCOMES_BODY", "PREDICTIONS_BODY"]

ARROW_STREAM = "application/vnd.apache.arrow.stream"

_NAME = {"type": "string", "minLength": 1, "maxLength": MAX_NAME_LEN}
_TS = {"type": "number", "description": "UNIX seconds (UTC); at most 300 s ahead, 90 days back"}
_TEXT = {"type": ["string", "null"], "maxLength": MAX_TEXT_LEN}
_COUNT = {"type": ["integer", "null"], "minimum": 0}

_PREDICTION: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["prediction_id", "model", "ts"],
    "properties": {
        "prediction_id": {"type": "string", "minLength": 1, "maxLength": MAX_ID_LEN},
        "model": _NAME,
        "version": {"type": "string", "maxLength": MAX_NAME_LEN},
        "slot": {"type": "string", "maxLength": MAX_NAME_LEN},
        "ts": _TS,
        "latency_ms": {"type": ["number", "null"], "minimum": 0},
        "error": _TEXT,
        "features": {
            "type": "object",
            "maxProperties": MAX_FEATURES,
            "description": "numbers are numeric features; strings and booleans categorical",
            "additionalProperties": {"type": ["number", "string", "boolean", "null"]},
        },
        "output": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "label": {"type": ["string", "integer", "boolean", "null"]},
                "value": {"type": ["number", "null"]},
                "proba": {"type": ["array", "null"], "items": {"type": "number"}},
                "text": _TEXT,
                "prompt_tokens": _COUNT,
                "completion_tokens": _COUNT,
            },
        },
        "tags": {"type": "object", "additionalProperties": {"type": "string"}},
        "trace_id": {"type": "string", "maxLength": 64},
        "span_id": {"type": "string", "maxLength": 32},
    },
}

_OUTCOME: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["prediction_id", "model", "ts"],
    "description": "needs a label or a value",
    "properties": {
        "prediction_id": {"type": "string", "minLength": 1, "maxLength": MAX_ID_LEN},
        "model": _NAME,
        "ts": _TS,
        "label": {"type": ["string", "integer", "boolean", "null"]},
        "value": {"type": ["number", "null"]},
    },
}


def _body(record: dict[str, Any], arrow_note: str) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "description": "Optionally `Content-Encoding: gzip`. Records are idempotent by id.",
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["records"],
                        "properties": {"records": {"type": "array", "items": record}},
                    }
                },
                ARROW_STREAM: {
                    "schema": {"type": "string", "format": "binary", "description": arrow_note}
                },
            },
        }
    }


PREDICTIONS_BODY = _body(
    _PREDICTION,
    "One row per record; columns named as the JSON fields, nested ones dotted "
    "(features.<name>, output.value, tags.<name>); see docs/ingest-api.md.",
)
OUTCOMES_BODY = _body(_OUTCOME, "Columns prediction_id, model, ts, label, value.")

INGEST_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Accepted records counted; refused ones listed by index and field",
        "content": {
            "application/json": {
                "example": {
                    "accepted": 998,
                    "rejected": [{"index": 3, "field": "ts", "error": "must be a number"}],
                }
            }
        },
    },
    400: {"description": "body not JSON/UTF-8/gzip/Arrow"},
    401: {"description": "missing, unknown or revoked API key"},
    403: {"description": "the key's role does not allow ingest"},
    413: {"description": "body, or decompressed body, too large"},
    422: {"description": "no records array, or an unknown/mistyped Arrow column"},
    503: {"description": "store down and spool full; retry after Retry-After seconds"},
}
