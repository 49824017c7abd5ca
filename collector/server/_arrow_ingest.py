"""Arrow IPC stream bodies: the same records as the JSON API, column by column, checked in bulk.

One row per record. Column names follow the JSON fields, nested ones dotted: ``prediction_id``,
``model``, ``version``, ``slot``, ``ts`` (an Arrow timestamp, or UNIX seconds as a number),
``latency_ms``, ``error``, ``features.<name>`` (numeric columns become numeric features, string,
dictionary and boolean columns categorical ones; null is missing), ``output.label``,
``output.value``, ``output.proba`` (list of numbers), ``output.text``, ``output.prompt_tokens``,
``output.completion_tokens``, ``tags.<name>``, ``trace_id``, ``span_id``. Checks run as
vectorised masks; a failing record is reported with its row index and the first failing field.
An unknown column or a column of the wrong type refuses the whole batch (422).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc

from ._ingest import (
    MAX_AGE_S,
    MAX_FEATURES,
    MAX_FUTURE_SKEW_S,
    MAX_ID_LEN,
    MAX_NAME_LEN,
    MAX_TEXT_LEN,
    OUTCOME_SCHEMA,
    PREDICTION_SCHEMA,
    Batch,
    RecordError,
)

__all__ = ["UnreadableBody", "parse_arrow"]

_PLAIN = {
    "predictions": {
        "prediction_id",
        "model",
        "version",
        "slot",
        "ts",
        "latency_ms",
        "error",
        "output.label",
        "output.value",
        "output.proba",
        "output.text",
        "output.prompt_tokens",
        "output.completion_tokens",
        "trace_id",
        "span_id",
    },
    "outcomes": {"prediction_id", "model", "ts", "label", "value"},
}
_PREFIXES = {"predictions": ("features.", "tags."), "outcomes": ()}


class UnreadableBody(ValueError):
    """The body is not an Arrow IPC stream."""


class _Checks:
    """Per-row failures, the first one per row kept (checks run in field order)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.field: list[str | None] = [None] * n
        self.error: list[str] = [""] * n
        self.bad = np.zeros(n, dtype=bool)

    def add(self, mask: Any, field: str, error: str) -> None:
        mask = np.asarray(mask, dtype=bool)
        new = mask & ~self.bad
        if new.any():
            for i in np.flatnonzero(new):
                self.field[i] = field
                self.error[i] = error
            self.bad |= new

    def rejected(self) -> tuple[RecordError, ...]:
        return tuple(
            RecordError(int(i), self.field[i] or "", self.error[i])
            for i in np.flatnonzero(self.bad)
        )


def _is_text(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        return _is_text(t.value_type)
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _is_number(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)


def _text(
    table: pa.Table,
    name: str,
    checks: _Checks,
    *,
    required: bool = False,
    limit: int = MAX_NAME_LEN,
) -> pa.Array:
    if name not in table.column_names:
        if required:
            checks.add(np.ones(checks.n, bool), name, "is required")
        return pa.array([""] * checks.n, pa.string())
    column = table.column(name).combine_chunks()
    if pa.types.is_boolean(column.type) and name.startswith("features."):
        column = pc.if_else(column, "true", "false")
    if not _is_text(column.type):
        raise ValueError(f"{name}: must be a string column, got {column.type}")
    column = column.cast(pa.string())
    lengths = pc.utf8_length(column)
    if not column.null_count:
        # The common case: one aggregate answers every check; masks only when one fails.
        low, high = (x.as_py() for x in pc.min_max(lengths).values())
        if (high or 0) <= limit and not (required and low == 0):
            return column
    missing = column.is_null().to_numpy(zero_copy_only=False)
    lengths = pc.fill_null(lengths, 0).to_numpy(zero_copy_only=False)
    if required:
        checks.add(missing, name, "is required")
        checks.add(lengths == 0, name, "must not be empty")
    checks.add(lengths > limit, name, f"is longer than {limit} characters")
    # A null feature or tag is absent from its map (as a missing JSON key); other text columns
    # are plain strings where "" means none.
    return column if name.startswith(("features.", "tags.")) else pc.fill_null(column, "")


def _floats(
    table: pa.Table, name: str, checks: _Checks, *, minimum: float | None = None
) -> np.ndarray:
    """The column as float64 with NaN where null; refuses non-finite and too small values."""
    if name not in table.column_names:
        return np.full(checks.n, np.nan)
    column = table.column(name).combine_chunks()
    if not _is_number(column.type):
        raise ValueError(f"{name}: must be a numeric column, got {column.type}")
    column = column.cast(pa.float64())
    if not column.null_count:
        values = column.to_numpy(zero_copy_only=False)
        if np.isfinite(values).all() and (minimum is None or not (values < minimum).any()):
            return values
    values = pc.fill_null(column, np.nan).to_numpy(zero_copy_only=False)
    present = ~column.is_null().to_numpy(zero_copy_only=False)
    with np.errstate(invalid="ignore"):
        checks.add(present & ~np.isfinite(values), name, "must be finite")
        if minimum is not None:
            checks.add(present & (values < minimum), name, f"must be >= {minimum:g}")
    return np.where(present, values, np.nan)


def _timestamps(table: pa.Table, checks: _Checks, now: float) -> pa.Array:
    if "ts" not in table.column_names:
        checks.add(np.ones(checks.n, bool), "ts", "is required")
        return pa.array(np.zeros(checks.n, "int64")).cast(pa.timestamp("us", tz="UTC"))
    column = table.column("ts").combine_chunks()
    if pa.types.is_timestamp(column.type):
        micros = column.cast(pa.timestamp("us")).cast(pa.int64())
        seconds = pc.fill_null(micros, 0).to_numpy(zero_copy_only=False) / 1e6
        checks.add(column.is_null().to_numpy(zero_copy_only=False), "ts", "is required")
    else:
        seconds = _floats(table, "ts", checks)
        checks.add(np.isnan(seconds), "ts", "is required")
    seconds = np.nan_to_num(seconds, nan=now)
    checks.add(
        seconds > now + MAX_FUTURE_SKEW_S,
        "ts",
        f"is more than {MAX_FUTURE_SKEW_S:g} s in the future",
    )
    checks.add(
        seconds < now - MAX_AGE_S, "ts", f"is more than {MAX_AGE_S / 86400:g} days in the past"
    )
    micros_out = np.round(np.clip(seconds, 0, 2**40) * 1e6).astype("int64")  # as JSON
    return pa.array(micros_out).cast(pa.timestamp("us", tz="UTC"))


def _map(
    n: int, names: list[str], columns: list[np.ndarray], valid: list[np.ndarray], item: pa.DataType
) -> pa.Array:
    """A map column from wide columns: per row the entries whose value is valid, in name order."""
    if not names or n == 0:
        return pa.array([[]] * n, pa.map_(pa.string(), item))
    width = len(names)
    mask = np.column_stack(valid)
    if mask.all():  # every row has every entry: a regular map, no per-row gather
        offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
        positions = np.tile(np.arange(width, dtype=np.int32), n)
        values = np.column_stack(columns).ravel()
    else:
        offsets = np.zeros(n + 1, dtype=np.int32)
        np.cumsum(mask.sum(axis=1), out=offsets[1:])
        positions = np.nonzero(mask)[1].astype(np.int32)
        values = np.column_stack(columns)[mask]
    keys = pc.take(pa.array(names, pa.string()), pa.array(positions))
    return pa.MapArray.from_arrays(pa.array(offsets, pa.int32()), keys, pa.array(values, item))


def _dense(table: pa.Table, names: list[str]) -> pa.Array | None:
    """The numeric feature map in one pass when every column is float64 without nulls and every
    value is finite (then no check can fail); None otherwise."""
    columns = [table.column(name) for name in names]
    if not columns or any(c.type != pa.float64() or c.null_count for c in columns):
        return None
    matrix = np.column_stack([c.to_numpy() for c in columns])
    if not np.isfinite(matrix).all():
        return None
    n, width = matrix.shape
    return pa.MapArray.from_arrays(
        pa.array(np.arange(0, (n + 1) * width, width, dtype=np.int32)),
        pc.take(
            pa.array([name.partition(".")[2] for name in names], pa.string()),
            pa.array(np.tile(np.arange(width, dtype=np.int32), n)),
        ),
        pa.array(matrix.ravel()),
    )


def _features(table: pa.Table, checks: _Checks, prefix: str) -> tuple[pa.Array, pa.Array]:
    num_names, num_cols, num_valid = [], [], []
    cat_names, cat_cols, cat_valid = [], [], []
    numeric = [
        name
        for name in table.column_names
        if name.startswith(prefix) and _is_number(table.schema.field(name).type)
    ]
    dense = _dense(table, numeric) if prefix == "features." else None
    for name in table.column_names:
        if not name.startswith(prefix):
            continue
        short = name[len(prefix) :]
        if not short or len(short) > MAX_NAME_LEN:
            raise ValueError(f"{name}: names must be 1..{MAX_NAME_LEN} characters")
        kind = table.schema.field(name).type
        if _is_number(kind) and dense is not None:
            num_names.append(short)  # already in ``dense``
        elif _is_number(kind) and prefix == "features.":
            values = _floats(table, name, checks)
            num_names.append(short)
            num_cols.append(values)
            num_valid.append(~np.isnan(values))
        else:
            column = _text(
                table, name, checks, limit=MAX_TEXT_LEN if prefix == "features." else MAX_NAME_LEN
            )
            cat_names.append(short)
            cat_cols.append(column.to_numpy(zero_copy_only=False))
            cat_valid.append(~column.is_null().to_numpy(zero_copy_only=False))
    if len(num_names) + len(cat_names) > MAX_FEATURES:
        raise ValueError(f"{prefix.rstrip('.')}: more than {MAX_FEATURES} columns")
    n = table.num_rows
    return (
        dense if dense is not None else _map(n, num_names, num_cols, num_valid, pa.float64()),
        _map(n, cat_names, cat_cols, cat_valid, pa.string()),
    )


def _proba(table: pa.Table, checks: _Checks) -> pa.Array:
    if "output.proba" not in table.column_names:
        return pa.array([[]] * checks.n, pa.list_(pa.float64()))
    column = table.column("output.proba").combine_chunks()
    if not (pa.types.is_list(column.type) or pa.types.is_large_list(column.type)) or not _is_number(
        column.type.value_type
    ):
        raise ValueError(f"output.proba: must be a list of numbers, got {column.type}")
    column = column.cast(pa.list_(pa.float64()))
    flat = pc.list_flatten(column)
    finite = pc.fill_null(pc.is_finite(flat), False)
    parents = pc.list_parent_indices(column).to_numpy(zero_copy_only=False)
    bad_items = ~finite.to_numpy(zero_copy_only=False)
    bad = np.zeros(checks.n, dtype=bool)
    bad[parents[bad_items]] = True
    checks.add(bad, "output.proba", "must be a list of numbers")
    return pc.fill_null(column, pa.scalar([], pa.list_(pa.float64())))


def _optional(values: np.ndarray) -> pa.Array:
    return pa.array(values, pa.float64(), mask=np.isnan(values))


def _tokens(table: pa.Table, name: str, checks: _Checks) -> pa.Array:
    values = np.nan_to_num(_floats(table, name, checks, minimum=0), nan=0.0)
    return pa.array(np.clip(values, 0, 2**32 - 1).astype("uint32"))


def _predictions(table: pa.Table, project: str, now: float, checks: _Checks) -> pa.Table:
    n = checks.n
    prediction_id = _text(table, "prediction_id", checks, required=True, limit=MAX_ID_LEN)
    model = _text(table, "model", checks, required=True)
    version, slot = _text(table, "version", checks), _text(table, "slot", checks)
    ts = _timestamps(table, checks, now)
    latency = np.nan_to_num(_floats(table, "latency_ms", checks, minimum=0.0), nan=0.0)
    error = _text(table, "error", checks, limit=MAX_TEXT_LEN)
    num, cat = _features(table, checks, "features.")
    label = table.column("output.label") if "output.label" in table.column_names else None
    if label is not None and (_is_number(label.type) or pa.types.is_boolean(label.type)):
        table = table.set_column(
            table.column_names.index("output.label"), "output.label", label.cast(pa.string())
        )
    columns = {
        "project": pa.array([project] * n, pa.string()),
        "model": model,
        "version": version,
        "slot": slot,
        "prediction_id": prediction_id,
        "ts": ts,
        "latency_ms": pa.array(latency),
        "error": error,
        "num": num,
        "cat": cat,
        "out_label": _text(table, "output.label", checks, limit=MAX_TEXT_LEN),
        "out_value": _optional(_floats(table, "output.value", checks)),
        "out_proba": _proba(table, checks),
        "out_text": _text(table, "output.text", checks, limit=MAX_TEXT_LEN),
        "prompt_tokens": _tokens(table, "output.prompt_tokens", checks),
        "completion_tokens": _tokens(table, "output.completion_tokens", checks),
        "tags": _features(table, checks, "tags.")[1],
        "trace_id": _text(table, "trace_id", checks, limit=64),
        "span_id": _text(table, "span_id", checks, limit=32),
    }
    return pa.Table.from_pydict(columns, schema=PREDICTION_SCHEMA)


def _outcomes(table: pa.Table, project: str, now: float, checks: _Checks) -> pa.Table:
    n = checks.n
    label = table.column("label") if "label" in table.column_names else None
    if label is not None and (_is_number(label.type) or pa.types.is_boolean(label.type)):
        table = table.set_column(
            table.column_names.index("label"), "label", label.cast(pa.string())
        )
    columns = {
        "project": pa.array([project] * n, pa.string()),
        "model": _text(table, "model", checks, required=True),
        "prediction_id": _text(table, "prediction_id", checks, required=True, limit=MAX_ID_LEN),
        "ts": _timestamps(table, checks, now),
        "label": _text(table, "label", checks, limit=MAX_TEXT_LEN),
        "value": _optional(_floats(table, "value", checks)),
    }
    result = pa.Table.from_pydict(columns, schema=OUTCOME_SCHEMA)
    empty = pc.equal(result.column("label"), "").to_numpy(zero_copy_only=False)
    checks.add(
        empty & result.column("value").is_null().to_numpy(zero_copy_only=False),
        "label",
        "an outcome needs a label or a value",
    )
    return result


_BUILD: dict[str, Callable[[pa.Table, str, float, _Checks], pa.Table]] = {
    "predictions": _predictions,
    "outcomes": _outcomes,
}


def parse_arrow(kind: str, body: bytes, project: str, now: float) -> Batch:
    """Validate an Arrow IPC stream of ``kind`` records (``predictions`` or ``outcomes``)."""
    try:
        table = ipc.open_stream(pa.py_buffer(body)).read_all()
    except (pa.ArrowInvalid, OSError, ValueError) as exc:
        raise UnreadableBody(f"body is not an Arrow IPC stream: {exc}") from exc
    unknown = [
        name
        for name in table.column_names
        if name not in _PLAIN[kind] and not name.startswith(_PREFIXES[kind] or ("\0",))
    ]
    if unknown:
        raise ValueError(f"{unknown[0]}: is not a known column")
    if len(set(table.column_names)) != len(table.column_names):
        raise ValueError("columns: a column name appears twice")
    checks = _Checks(table.num_rows)
    result = _BUILD[kind](table, project, now, checks)
    if checks.bad.any():
        result = result.filter(pa.array(~checks.bad))
    return Batch(result, checks.rejected())
