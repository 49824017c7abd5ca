"""Validation of ingested records and their conversion to Arrow columns for the store.

Each record is checked on its own: a bad record is refused with its index, the field and the
problem, and the good records of the same batch are stored.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

__all__ = [
    "MAX_FUTURE_SKEW_S",
    "OUTCOME_SCHEMA",
    "OUTPUT_FIELDS",
    "PREDICTION_FIELDS",
    "PREDICTION_SCHEMA",
    "Batch",
    "RecordError",
    "batch_token",
    "parse_outcomes",
    "parse_predictions",
]

MAX_ID_LEN = 128
MAX_NAME_LEN = 128
MAX_TEXT_LEN = 65536
MAX_FEATURES = 2000
#: Records stamped further in the future than this are refused (clock skew allowance).
MAX_FUTURE_SKEW_S = 300.0
#: Records older than this are refused (the store's retention would drop them at once).
MAX_AGE_S = 90 * 86400.0

_STR_MAP = pa.map_(pa.string(), pa.string())
_NUM_MAP = pa.map_(pa.string(), pa.float64())
_TS = pa.timestamp("us", tz="UTC")

PREDICTION_SCHEMA = pa.schema(
    [
        ("project", pa.string()),
        ("model", pa.string()),
        ("version", pa.string()),
        ("slot", pa.string()),
        ("prediction_id", pa.string()),
        ("ts", _TS),
        ("latency_ms", pa.float64()),
        ("error", pa.string()),
        ("num", _NUM_MAP),
        ("cat", _STR_MAP),
        ("out_label", pa.string()),
        ("out_value", pa.float64()),
        ("out_proba", pa.list_(pa.float64())),
        ("out_text", pa.string()),
        ("prompt_tokens", pa.uint32()),
        ("completion_tokens", pa.uint32()),
        ("tags", _STR_MAP),
        ("trace_id", pa.string()),
        ("span_id", pa.string()),
    ]
)

OUTCOME_SCHEMA = pa.schema(
    [
        ("project", pa.string()),
        ("model", pa.string()),
        ("prediction_id", pa.string()),
        ("ts", _TS),
        ("label", pa.string()),
        ("value", pa.float64()),
    ]
)

PREDICTION_FIELDS = frozenset(
    {
        "prediction_id",
        "model",
        "version",
        "slot",
        "ts",
        "latency_ms",
        "error",
        "features",
        "output",
        "tags",
        "trace_id",
        "span_id",
    }
)
OUTPUT_FIELDS = frozenset({"label", "value", "proba", "text", "prompt_tokens", "completion_tokens"})
_OUTCOME_FIELDS = frozenset({"prediction_id", "model", "ts", "label", "value"})


@dataclass(frozen=True)
class RecordError:
    """Why record ``index`` of a batch was refused."""

    index: int
    field: str
    error: str


@dataclass(frozen=True)
class Batch:
    """The accepted records of a batch as an Arrow table, and the refused ones."""

    table: pa.Table
    rejected: tuple[RecordError, ...]


class _Invalid(Exception):
    def __init__(self, field: str, error: str) -> None:
        super().__init__(error)
        self.field = field
        self.error = error


def _string(value: Any, field: str, *, required: bool = False, limit: int = MAX_NAME_LEN) -> str:
    if value is None:
        if required:
            raise _Invalid(field, "is required")
        return ""
    if not isinstance(value, str):
        raise _Invalid(field, f"must be a string, got {type(value).__name__}")
    if required and not value:
        raise _Invalid(field, "must not be empty")
    if len(value) > limit:
        raise _Invalid(field, f"is longer than {limit} characters")
    return value


def _number(
    value: Any, field: str, *, required: bool = False, minimum: float | None = None
) -> float | None:
    if value is None:
        if required:
            raise _Invalid(field, "is required")
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Invalid(field, f"must be a number, got {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number):
        raise _Invalid(field, "must be finite")
    if minimum is not None and number < minimum:
        raise _Invalid(field, f"must be >= {minimum:g}")
    return number


def _timestamp(value: Any, now: float) -> int:
    """Microseconds since the epoch, ``round(ts * 1e6)`` as on every ingest path (so a record
    re-sent in another format keeps its sorting key and collapses with the first copy)."""
    ts = _number(value, "ts", required=True)
    assert ts is not None
    if ts > now + MAX_FUTURE_SKEW_S:
        raise _Invalid("ts", f"is more than {MAX_FUTURE_SKEW_S:g} s in the future")
    if ts < now - MAX_AGE_S:
        raise _Invalid("ts", f"is more than {MAX_AGE_S / 86400:g} days in the past")
    return round(ts * 1e6)


def _mapping(value: Any, field: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _Invalid(field, f"must be an object, got {type(value).__name__}")
    return value


def _features(value: Any) -> tuple[list[tuple[str, float]], list[tuple[str, str]]]:
    features = _mapping(value, "features")
    if len(features) > MAX_FEATURES:
        raise _Invalid("features", f"has more than {MAX_FEATURES} entries")
    num: list[tuple[str, float]] = []
    cat: list[tuple[str, str]] = []
    for name, item in features.items():
        field = f"features.{name}"
        if not name or len(name) > MAX_NAME_LEN:
            raise _Invalid(field, f"feature names must be 1..{MAX_NAME_LEN} characters")
        if item is None:
            continue
        if isinstance(item, bool):
            cat.append((name, "true" if item else "false"))
        elif isinstance(item, (int, float)):
            number = float(item)
            if not math.isfinite(number):
                raise _Invalid(field, "must be finite (send null for a missing value)")
            num.append((name, number))
        elif isinstance(item, str):
            cat.append((name, _string(item, field, limit=MAX_TEXT_LEN)))
        else:
            raise _Invalid(
                field, f"must be a number, string, boolean or null, got {type(item).__name__}"
            )
    return num, cat


def _unknown(record: Mapping[str, Any], allowed: frozenset[str], prefix: str = "") -> None:
    for key in record:
        if key not in allowed:
            raise _Invalid(f"{prefix}{key}", "is not a known field")


def _prediction_row(record: Any, project: str, now: float) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise _Invalid("", f"a record must be an object, got {type(record).__name__}")
    _unknown(record, PREDICTION_FIELDS)
    num, cat = _features(record.get("features"))
    output = _mapping(record.get("output"), "output")
    _unknown(output, OUTPUT_FIELDS, "output.")
    proba = output.get("proba")
    if proba is not None and (
        not isinstance(proba, list) or any(_number(p, "output.proba") is None for p in proba)
    ):
        raise _Invalid("output.proba", "must be a list of numbers")
    tags = _mapping(record.get("tags"), "tags")
    for key, tag in tags.items():
        _string(tag, f"tags.{key}", required=True)
    label = output.get("label")
    return {
        "project": project,
        "model": _string(record.get("model"), "model", required=True),
        "version": _string(record.get("version"), "version"),
        "slot": _string(record.get("slot"), "slot"),
        "prediction_id": _string(
            record.get("prediction_id"), "prediction_id", required=True, limit=MAX_ID_LEN
        ),
        "ts": _timestamp(record.get("ts"), now),
        "latency_ms": _number(record.get("latency_ms"), "latency_ms", minimum=0.0) or 0.0,
        "error": _string(record.get("error"), "error", limit=MAX_TEXT_LEN),
        "num": num,
        "cat": cat,
        "out_label": _string(
            str(label) if isinstance(label, (int, bool)) else label,
            "output.label",
            limit=MAX_TEXT_LEN,
        ),
        "out_value": _number(output.get("value"), "output.value"),
        "out_proba": [float(p) for p in proba or ()],
        "out_text": _string(output.get("text"), "output.text", limit=MAX_TEXT_LEN),
        "prompt_tokens": int(
            _number(output.get("prompt_tokens"), "output.prompt_tokens", minimum=0) or 0
        ),
        "completion_tokens": int(
            _number(output.get("completion_tokens"), "output.completion_tokens", minimum=0) or 0
        ),
        "tags": list(tags.items()),
        "trace_id": _string(record.get("trace_id"), "trace_id", limit=64),
        "span_id": _string(record.get("span_id"), "span_id", limit=32),
    }


def _outcome_row(record: Any, project: str, now: float) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise _Invalid("", f"a record must be an object, got {type(record).__name__}")
    _unknown(record, _OUTCOME_FIELDS)
    label = record.get("label")
    row = {
        "project": project,
        "model": _string(record.get("model"), "model", required=True),
        "prediction_id": _string(
            record.get("prediction_id"), "prediction_id", required=True, limit=MAX_ID_LEN
        ),
        "ts": _timestamp(record.get("ts"), now),
        "label": _string(
            str(label) if isinstance(label, (int, bool)) else label, "label", limit=MAX_TEXT_LEN
        ),
        "value": _number(record.get("value"), "value"),
    }
    if not row["label"] and row["value"] is None:
        raise _Invalid("label", "an outcome needs a label or a value")
    return row


def _parse(
    payload: Any,
    project: str,
    now: float,
    to_row: Callable[[Any, str, float], dict[str, Any]],
    schema: pa.Schema,
) -> Batch:
    if not isinstance(payload, dict) or not isinstance(payload.get("records"), list):
        raise ValueError('body must be a JSON object with a "records" array')
    rows: list[dict[str, Any]] = []
    rejected: list[RecordError] = []
    for index, record in enumerate(payload["records"]):
        try:
            rows.append(to_row(record, project, now))
        except _Invalid as exc:
            rejected.append(RecordError(index, exc.field, exc.error))
    return Batch(pa.Table.from_pylist(rows, schema=schema), tuple(rejected))


def parse_predictions(payload: Any, project: str, now: float) -> Batch:
    """Validate a ``{"records": [...]}`` prediction payload (see docs/ingest-api.md)."""
    return _parse(payload, project, now, _prediction_row, PREDICTION_SCHEMA)


def parse_outcomes(payload: Any, project: str, now: float) -> Batch:
    """Validate a ``{"records": [...]}`` outcome payload."""
    return _parse(payload, project, now, _outcome_row, OUTCOME_SCHEMA)


def batch_token(kind: str, project: str, body: bytes) -> str:
    """Deduplication token for a request body: a retried identical batch inserts nothing."""
    return hashlib.sha256(b"%s\0%s\0%s" % (kind.encode(), project.encode(), body)).hexdigest()
