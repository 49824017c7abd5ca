"""The fast path for JSON predictions: columns gathered in one pass, checked in bulk.

The record-by-record validator (``_ingest``) costs about 30 us per record with 20 features.
Here each record costs a few dict lookups and list appends; types, lengths and limits are then
checked over whole columns (Arrow and NumPy). The fast path only ever *accepts*: if any value is
out of place it returns ``None`` and the caller runs the exact validator, which names the record
and field. So a valid batch gives the same rows either way (tested), and an invalid one the same
errors.
"""

from __future__ import annotations

from itertools import chain
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ._ingest import (
    MAX_AGE_S,
    MAX_FEATURES,
    MAX_FUTURE_SKEW_S,
    MAX_ID_LEN,
    MAX_NAME_LEN,
    MAX_TEXT_LEN,
    OUTPUT_FIELDS,
    PREDICTION_FIELDS,
    PREDICTION_SCHEMA,
    Batch,
)

__all__ = ["fast_predictions"]

_EMPTY: dict[str, Any] = {}
_DICT = frozenset({dict})


class _Reject(Exception):
    """Something needs the exact validator."""


def _strings(values: list[Any], limit: int, *, required: bool = False) -> pa.Array:
    try:
        array = pa.array(values, pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise _Reject from exc
    lengths = pc.utf8_length(array)
    if required and (array.null_count or pc.min(lengths).as_py() == 0):
        raise _Reject
    if len(array) and (pc.max(lengths).as_py() or 0) > limit:
        raise _Reject
    return pc.fill_null(array, "")


_FLOAT, _INT, _BOOL, _STR, _NONE, _OTHER = range(6)
_CODES = {float: _FLOAT, int: _INT, bool: _BOOL, str: _STR, type(None): _NONE}


def _kinds(values: list[Any]) -> np.ndarray:
    """Each value's JSON type as a small int (``_FLOAT``... ``_OTHER``)."""
    codes = _CODES.get
    return np.fromiter((codes(type(v), _OTHER) for v in values), dtype=np.int8, count=len(values))


_NUMERIC = frozenset({float, int, type(None)})


def _numbers(values: list[Any], *, minimum: float | None = None) -> np.ndarray:
    """Floats with NaN for null; anything not a number (bools included) rejects."""
    if not set(map(type, values)) <= _NUMERIC:
        raise _Reject
    try:
        array = pa.array(values, pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
        raise _Reject from exc
    if minimum is not None and (array < minimum).any():
        raise _Reject
    return array


def _key_array(keys: list[str], counts: list[int], n: int) -> pa.Array:
    """The flattened map keys, names checked; cheap when every record repeats the same names."""
    width = counts[0] if n else 0
    names = keys[:width]
    if width and len(keys) == width * n and keys == names * n:
        # The usual batch: every record has the same feature names in the same order (orjson
        # interns short keys, so the comparison is mostly by identity).
        if any(not name or len(name) > MAX_NAME_LEN for name in names):
            raise _Reject
        return pa.array(names, pa.string()).take(np.tile(np.arange(width, dtype=np.int32), n))
    if any(not name or len(name) > MAX_NAME_LEN for name in set(keys)):
        raise _Reject
    return pa.array(keys, pa.string())


def _empty_map(n: int, item: pa.DataType) -> pa.Array:
    return pa.MapArray.from_arrays(
        pa.array(np.zeros(n + 1, dtype=np.int32)), pa.array([], pa.string()), pa.array([], item)
    )


def _map(
    keys: list[str], values: list[Any], counts: list[int], n: int
) -> tuple[pa.Array, pa.Array]:
    """Numeric and categorical map columns from flattened feature entries."""
    key_array = _key_array(keys, counts, n)
    sizes = np.asarray(counts, dtype=np.int64)
    if set(map(type, values)) <= _NUMERIC:  # the common case: numbers and nulls only
        try:
            numbers = pa.array(values, pa.float64())
        except (pa.ArrowInvalid, OverflowError) as exc:
            raise _Reject from exc
        keep = ~np.asarray(numbers.is_null())
        return _entries(sizes, key_array, numbers, keep, n, pa.float64()), _empty_map(
            n, pa.string()
        )
    kinds = _kinds(values)
    is_num = kinds <= _INT
    is_bool = kinds == _BOOL
    is_str = kinds == _STR
    if (kinds == _OTHER).any():
        raise _Reject
    num_values = np.zeros(len(values))
    if is_num.any():
        try:
            numbers = pa.array(
                [v if k else None for v, k in zip(values, is_num, strict=True)], pa.float64()
            )
        except (pa.ArrowInvalid, OverflowError) as exc:
            raise _Reject from exc
        num_values = numbers.to_numpy(zero_copy_only=False)
    text = [
        ("true" if v else "false") if b else (v if s else None)
        for v, b, s in zip(values, is_bool, is_str, strict=True)
    ]
    text_array = pa.array(text, pa.string())
    if len(text_array) and (pc.max(pc.utf8_length(text_array)).as_py() or 0) > MAX_TEXT_LEN:
        raise _Reject
    return (
        _entries(sizes, key_array, pa.array(num_values), is_num, n, pa.float64()),
        _entries(sizes, key_array, text_array, is_bool | is_str, n, pa.string()),
    )


def _entries(
    sizes: np.ndarray, keys: pa.Array, values: pa.Array, keep: np.ndarray, n: int, item: pa.DataType
) -> pa.Array:
    offsets = np.zeros(n + 1, dtype=np.int32)
    if keep.all():
        np.cumsum(sizes, out=offsets[1:])
        return pa.MapArray.from_arrays(pa.array(offsets), keys, values.cast(item))
    rows = np.repeat(np.arange(n), sizes)
    np.cumsum(np.bincount(rows[keep], minlength=n), out=offsets[1:])
    mask = pa.array(keep)
    return pa.MapArray.from_arrays(
        pa.array(offsets), keys.filter(mask), values.filter(mask).cast(item)
    )


_TOP = (
    "prediction_id",
    "model",
    "version",
    "slot",
    "ts",
    "latency_ms",
    "error",
    "trace_id",
    "span_id",
)
_OUT = ("label", "value", "text", "prompt_tokens", "completion_tokens")


def _objects(values: list[Any]) -> list[dict[str, Any]]:
    """``values`` with null as ``{}``; rejects anything that is not an object."""
    objects = [v if v is not None else _EMPTY for v in values]
    if not set(map(type, objects)) <= _DICT:
        raise _Reject
    return objects


def _flatten(objects: list[dict[str, Any]]) -> tuple[list[str], list[Any], list[int]]:
    return (
        list(chain.from_iterable(objects)),
        list(chain.from_iterable(map(dict.values, objects))),
        list(map(len, objects)),
    )


def _gather(records: list[Any]) -> dict[str, Any]:
    # Column by column with comprehensions: about twice as fast as one loop over the records
    # appending to a dozen lists.
    if not set(map(type, records)) <= _DICT or not all(map(PREDICTION_FIELDS.issuperset, records)):
        raise _Reject
    cols: dict[str, Any] = {name: [r.get(name) for r in records] for name in _TOP}
    features = _objects([r.get("features") for r in records])
    outputs = _objects([r.get("output") for r in records])
    tags = _objects([r.get("tags") for r in records])
    if max(map(len, features), default=0) > MAX_FEATURES:
        raise _Reject
    if not all(map(OUTPUT_FIELDS.issuperset, outputs)):
        raise _Reject
    for name in _OUT:
        cols["o." + name] = [o.get(name) for o in outputs]
    cols["proba"] = [p if (p := o.get("proba")) is not None else [] for o in outputs]
    cols["features"] = _flatten(features)
    cols["tags"] = _flatten(tags)
    return cols


def _timestamps(values: list[Any], now: float) -> pa.Array:
    seconds = _numbers(values)
    if np.isnan(seconds).any():
        raise _Reject
    if (seconds > now + MAX_FUTURE_SKEW_S).any() or (seconds < now - MAX_AGE_S).any():
        raise _Reject
    # round(ts * 1e6), half to even, exactly as the record validator and the Arrow path do.
    return pa.array(np.round(seconds * 1e6).astype(np.int64)).cast(pa.timestamp("us", tz="UTC"))


def _labels(values: list[Any]) -> pa.Array:
    kinds = _kinds(values)
    if ((kinds == _INT) | (kinds == _BOOL)).any():
        values = [str(v) if type(v) in (int, bool) else v for v in values]
    return _strings(values, MAX_TEXT_LEN)


def _proba(lists: list[Any]) -> pa.Array:
    if any(type(p) is not list for p in lists):
        raise _Reject
    flat = [x for p in lists for x in p]
    _numbers(flat)
    if flat and np.isnan(pa.array(flat, pa.float64()).to_numpy(zero_copy_only=False)).any():
        raise _Reject
    return pa.array(lists, pa.list_(pa.float64()))


def _tokens(values: list[Any]) -> pa.Array:
    counts = np.nan_to_num(_numbers(values, minimum=0), nan=0.0)
    return pa.array(counts.astype(np.uint32))


def fast_predictions(payload: Any, project: str, now: float) -> Batch | None:
    """The batch, if every record is valid; ``None`` when the exact validator must decide."""
    if type(payload) is not dict or type(payload.get("records")) is not list:
        return None
    records = payload["records"]
    n = len(records)
    try:
        c = _gather(records)
        fkeys, fvals, fcounts = c["features"]
        num, cat = _map(fkeys, fvals, fcounts, n)
        tkeys, tvals, tcounts = c["tags"]
        if any(type(v) is not str for v in tvals):
            raise _Reject
        tags = _map(tkeys, tvals, tcounts, n)[1]
        latency = np.nan_to_num(_numbers(c["latency_ms"], minimum=0.0), nan=0.0)
        value = _numbers(c["o.value"])
        columns = {
            "project": pa.array([project] * n, pa.string()),
            "model": _strings(c["model"], MAX_NAME_LEN, required=True),
            "version": _strings(c["version"], MAX_NAME_LEN),
            "slot": _strings(c["slot"], MAX_NAME_LEN),
            "prediction_id": _strings(c["prediction_id"], MAX_ID_LEN, required=True),
            "ts": _timestamps(c["ts"], now),
            "latency_ms": pa.array(latency),
            "error": _strings(c["error"], MAX_TEXT_LEN),
            "num": num,
            "cat": cat,
            "out_label": _labels(c["o.label"]),
            "out_value": pa.array(value, pa.float64(), mask=np.isnan(value)),
            "out_proba": _proba(c["proba"]),
            "out_text": _strings(c["o.text"], MAX_TEXT_LEN),
            "prompt_tokens": _tokens(c["o.prompt_tokens"]),
            "completion_tokens": _tokens(c["o.completion_tokens"]),
            "tags": tags,
            "trace_id": _strings(c["trace_id"], 64),
            "span_id": _strings(c["span_id"], 32),
        }
    except _Reject:
        return None
    return Batch(pa.Table.from_pydict(columns, schema=PREDICTION_SCHEMA), ())
