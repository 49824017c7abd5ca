"""The sender's conversion step: raw queue entries to encoded wire records.

Sampling (by a hash of the prediction id, so every process agrees), argument binding, feature
extraction, output mapping, masking, JSON-safety and the per-record size cap all happen here, off
the caller's thread. Every record not produced is counted by ``drop(reason, n)``.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from typing import Any

from . import _inputs, _mask, _otel, _outputs, _values
from ._config import Config
from ._ids import ids, row_id
from ._log import warn_limited
from ._spec import MonitorSpec, RawCall, RawOutcome

_TRUNCATE_TO = 256


def sampled(prediction_id: str, rate: float) -> bool:
    """Whether ``prediction_id`` is in the ``rate`` sample (deterministic)."""
    if rate >= 1.0:
        return True
    return zlib.crc32(prediction_id.encode()) < rate * 4294967296.0


# One encoder for all: json.dumps with non-default options builds a new one per call (slow).
_encoder = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


def encode(record: dict[str, Any]) -> bytes:
    """Compact JSON bytes of one record (NaN/Inf are already ``null``)."""
    return _encoder.encode(record).encode()


def error_text(exc: BaseException) -> str:
    """``"TypeName: message"`` of an exception, never raising."""
    try:
        message = str(exc)
    except Exception:
        message = "<unprintable>"
    return f"{type(exc).__name__}: {message}"[: _values.MAX_STR]


_BATCH_KINDS = ("dataframe", "matrix", "rows")


def _maybe_batch(raw: RawCall) -> bool:
    """Whether any argument could make the call a batch (rows are sampled one by one)."""
    values = (*raw.args, *raw.kwargs.values())
    return any(_values.kind(v) in _BATCH_KINDS for v in values)


class Converter:
    """Builds encoded records from ``RawCall`` / ``RawOutcome`` entries under one ``Config``."""

    def __init__(self, config: Config, drop: Callable[[str, int], None]) -> None:
        self._config = config
        self._drop = drop

    def call(self, raw: RawCall) -> list[bytes]:
        """The encoded prediction records of one call (several for a batch call)."""
        spec = raw.spec
        rate = spec.sample_rate if spec.sample_rate is not None else self._config.sample_rate
        call_id = ids.format(raw.seq)
        if rate < 1.0 and not sampled(call_id, rate) and not _maybe_batch(raw):
            self._drop("sampled", 1)  # decided before any conversion work
            return []
        inputs = _inputs.extract(
            _inputs.bind(spec.fn, raw.args, raw.kwargs),
            spec.features,
            spec.feature_names,
            max_rows=self._config.max_queue_size,  # one call may not exceed the memory bound
        )
        result = self._output_value(spec, raw)
        base = self._base(spec, raw)
        if inputs.rows is None:
            if not sampled(call_id, rate):
                self._drop("sampled", 1)
                return []
            out = _outputs.to_wire(result, spec.task, spec.classes) if raw.error is None else None
            return self._finish(spec, base, call_id, inputs.common, out)
        rows = inputs.rows
        if inputs.total > len(rows):
            warn_limited("batch-cap", "%s: batch over max_queue_size rows cut", spec.model)
            self._drop("queue_full", inputs.total - len(rows))
        outputs = _values.sequence(result) if raw.error is None else None
        if outputs is not None and len(outputs) != inputs.total:
            warn_limited(
                "batch-len", "%s: output length differs from rows; outputs dropped", spec.model
            )
            outputs = None
        encoded: list[bytes] = []
        for i, row in enumerate(rows):
            pid = row_id(call_id, i)
            if not sampled(pid, rate):
                self._drop("sampled", 1)
                continue
            feats = {**inputs.common, **row}
            out = (
                None
                if outputs is None
                else _outputs.to_wire(outputs[i], spec.task, spec.classes, in_batch=True)
            )
            encoded.extend(self._finish(spec, base, pid, feats, out))
        return encoded

    def outcome(self, raw: RawOutcome) -> bytes | None:
        """The encoded outcome record, or ``None`` (counted) when it lacks a model."""
        model = raw.model or self._config.default_model
        if not model:
            warn_limited("outcome-model", "log_outcome without a model (and no default_model)")
            self._drop("invalid", 1)
            return None
        record = {
            "prediction_id": raw.prediction_id,
            "model": model,
            "ts": raw.ts,
            "label": _values.text(raw.label),
            "value": _values.number(raw.value),
        }
        return encode(record)

    def _output_value(self, spec: MonitorSpec, raw: RawCall) -> Any:
        if raw.error is not None:
            return None
        value = raw.result
        if spec.output is not None:
            try:
                return spec.output(value)
            except Exception as exc:
                warn_limited(
                    "output-fn", "%s: output callable raised %s", spec.model, error_text(exc)
                )
                return None
        return _outputs.streamed(value) if raw.streamed else value

    def _base(self, spec: MonitorSpec, raw: RawCall) -> dict[str, Any]:
        trace_id, span_id = _otel.ids(raw.trace)
        return {
            "model": spec.model,
            "version": spec.version,
            "slot": spec.slot,
            "ts": raw.ts,
            "latency_ms": raw.latency_s * 1000.0,
            "error": None if raw.error is None else error_text(raw.error),
            "tags": dict(spec.tags),
            "trace_id": trace_id,
            "span_id": span_id,
        }

    def _finish(
        self,
        spec: MonitorSpec,
        base: dict[str, Any],
        prediction_id: str,
        features: dict[str, Any],
        output: dict[str, Any] | None,
    ) -> list[bytes]:
        record: dict[str, Any] | None = {
            "prediction_id": prediction_id,
            **base,
            "tags": dict(base["tags"]),
            "features": features,
            "output": output,
        }
        assert record is not None
        config = self._config
        try:
            record = _mask.apply(record, spec.allow, spec.deny | config.deny, spec.mask)
            if record is not None:
                record = _mask.apply(record, config.allow, frozenset(), config.mask)
        except Exception as exc:
            # Fail closed: a record whose masking failed may hold what the mask was meant to hide.
            warn_limited("mask", "%s: mask raised %s; record dropped", spec.model, error_text(exc))
            self._drop("mask_error", 1)
            return []
        if record is None:
            self._drop("masked", 1)
            return []
        record["features"] = {str(k): _values.feature(v) for k, v in record["features"].items()}
        record["tags"] = {str(k): str(v) for k, v in (record.get("tags") or {}).items()}
        try:
            data = encode(record)
        except (TypeError, ValueError) as exc:
            warn_limited("encode", "%s: record not encodable: %s", spec.model, error_text(exc))
            self._drop("unserializable", 1)
            return []
        if len(data) > config.max_record_bytes:
            data = self._shrink(record)
            if len(data) > config.max_record_bytes:
                self._drop("too_large", 1)
                return []
        return [data]

    def _shrink(self, record: dict[str, Any]) -> bytes:
        for key, value in record["features"].items():
            if isinstance(value, str) and len(value) > _TRUNCATE_TO:
                record["features"][key] = value[:_TRUNCATE_TO]
        output = record.get("output")
        if output and isinstance(output.get("text"), str):
            output["text"] = output["text"][: self._config.max_record_bytes // 2]
        return encode(record)
