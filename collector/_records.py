"""The sender's conversion step: raw queue entries to encoded wire records.

Sampling (by a hash of the prediction id, so every process agrees), argument binding, feature
extraction, output mapping, masking, JSON-safety and the per-record size cap all happen here, off
the caller's thread. Every record not produced is counted by ``drop(reason, n)``.

The sender runs this for every call, sharing the GIL with the service, so the common case is kept
short: a record with no masking whose features are all ``str`` keys with ``int``/``float``
values goes into Arrow columns when the sender writes Arrow (``_arrow``), else is formatted from
its function's ``Plan`` JSON template (one C-level JSON encoding of the features dict, no
intermediate record dict; finite values only). Anything else takes the general path: a record
dict, masking, normalisation, ``encode``.
"""

from __future__ import annotations

import math
import operator
import zlib
from collections.abc import Callable
from typing import Any

from . import _inputs, _mask, _otel, _outputs, _values
from ._arrow import ArrowRows
from ._config import Config
from ._ids import ids, row_id
from ._log import warn_limited
from ._plan import NULL_OUTPUT, NUMBERS, Plan, encode, json_text, make_plan, numeric_json
from ._spec import MonitorSpec, RawCall, RawOutcome

_TRUNCATE_TO = 256


def sampled(prediction_id: str, rate: float) -> bool:
    """Whether ``prediction_id`` is in the ``rate`` sample (deterministic)."""
    if rate >= 1.0:
        return True
    return zlib.crc32(prediction_id.encode()) < rate * 4294967296.0


_isfinite = math.isfinite
_last = operator.itemgetter(-1)
_FLOAT = frozenset({float})
_DICT = frozenset({dict})
_RAW_CALL = frozenset({RawCall})
_MAX_PLANS = 4096


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
        self._plans: dict[MonitorSpec, Plan] = {}
        #: Where records that fit Arrow columns go (set by the sender), else ``None``: all JSON.
        self.arrow: ArrowRows | None = None

    def _plan(self, spec: MonitorSpec) -> Plan:
        plan = self._plans.get(spec)
        if plan is None:
            if len(self._plans) >= _MAX_PLANS:  # decorations made on the fly: stay bounded
                self._plans.clear()
            plan = self._plans[spec] = make_plan(spec, self._config)
        return plan

    def calls(self, block: list[Any]) -> int | None:
        """Put a block of queue entries into the Arrow columns at once, when every entry is the
        common call of one function (``call``'s direct path: one dict of numbers in, a finite
        float out, nothing to mask or sample, no error, no trace). The checks run as C-level
        passes over the block, so a record costs about half as much as one by one.

        Returns ``None`` when the block does not fit (nothing taken: convert its entries with
        ``call``), else how many entries from its start were taken (fewer than all when the
        Arrow batch is full: seal it and go on from there).
        """
        arrow = self.arrow
        if arrow is None or not _RAW_CALL.issuperset(map(type, block)):
            return None
        spec = block[0].spec
        arity = self._plan(spec).direct
        if not arity:
            return None
        columns = zip(*block, strict=True)  # RawCall's fields, each over the block
        specs, seqs, ts, latency, args, kwargs, results, errors, traces, streamed = columns
        n = len(block)
        if (
            specs.count(spec) != n
            or errors.count(None) != n
            or traces.count(None) != n
            or any(kwargs)
            or any(streamed)
            or not _FLOAT.issuperset(map(type, results))
            or not _FLOAT.issuperset(map(type, ts))
            or not _FLOAT.issuperset(map(type, latency))
            or not all(map(_isfinite, results))
            or not all(map(_isfinite, ts))
            or set(map(len, args)) != {arity}
        ):
            return None
        features = list(map(_last, args))
        latency_ms = [x * 1000.0 for x in latency]
        if not _DICT.issuperset(map(type, features)) or not all(map(_isfinite, latency_ms)):
            return None
        pids = ids.format_many(seqs)
        return arrow.add_block(spec, pids, ts, latency_ms, results, features)

    def call(self, raw: RawCall) -> list[bytes]:
        """The encoded prediction records of one call (several for a batch call)."""
        spec = raw.spec
        plan = self._plan(spec)
        arrow = self.arrow
        if arrow is not None and plan.direct and raw.trace is None and raw.error is None:
            # The common call (one dict of numbers in, a float out, nothing to mask or sample)
            # in as few steps as the general path would end in: the same checks, same record.
            args, ts, latency_ms, result = raw.args, raw.ts, raw.latency_s * 1000.0, raw.result
            if (
                len(args) == plan.direct
                and type(args[-1]) is dict
                and type(result) is float
                and type(ts) is float
                and type(latency_ms) is float
                and not raw.kwargs
                and not raw.streamed
                and _isfinite(result)
                and _isfinite(ts)
                and _isfinite(latency_ms)
                and NUMBERS.issuperset(map(type, args[-1].values()))
                and arrow.add(spec, ids.format(raw.seq), ts, latency_ms, None, "", "", args[-1],
                              result)
            ):  # fmt: skip
                return []
        rate = plan.rate
        call_id = ids.format(raw.seq)
        if rate < 1.0 and not sampled(call_id, rate) and not _maybe_batch(raw):
            self._drop("sampled", 1)  # decided before any conversion work
            return []
        args = raw.args
        if plan.arity and len(args) == plan.arity and type(args[-1]) is dict and not raw.kwargs:
            inputs = _inputs.Inputs(args[-1], None)  # copied before anything changes it
        else:
            inputs = _inputs.extract(
                _inputs.bind(spec.fn, args, raw.kwargs),
                spec.features,
                spec.feature_names,
                max_rows=self._config.max_queue_size,  # one call may not exceed the memory bound
            )
        result = self._output_value(spec, raw)
        trace_id, span_id = _otel.ids(raw.trace)
        error = None if raw.error is None else error_text(raw.error)
        if inputs.rows is None:
            if not sampled(call_id, rate):
                self._drop("sampled", 1)
                return []
            if raw.error is not None:
                out: Any = None
            elif type(result) is float and plan.value_output is not None and _isfinite(result):
                out = result  # the output's ``value``: formatted from the plan (or a column)
            else:
                out = _outputs.to_wire(result, spec.task, spec.classes)
            return self._emit(
                spec, plan, raw, error, trace_id, span_id, call_id, inputs.common, out
            )
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
            encoded.extend(self._emit(spec, plan, raw, error, trace_id, span_id, pid, feats, out))
        return encoded

    def _emit(
        self,
        spec: MonitorSpec,
        plan: Plan,
        raw: RawCall,
        error: str | None,
        trace_id: str,
        span_id: str,
        prediction_id: str,
        features: dict[str, Any],
        output: float | dict[str, Any] | None,
    ) -> list[bytes]:
        """One record: into the Arrow columns or from the plan's JSON template when nothing needs
        masking or normalising, else by the general path. ``output`` is its wire dict, or a
        ``float`` when it is only the output's ``value`` (the plan has its JSON form)."""
        ts, latency_ms = raw.ts, raw.latency_s * 1000.0
        if (
            plan.template is not None
            and type(ts) is float
            and type(latency_ms) is float
            and _isfinite(ts)
            and _isfinite(latency_ms)
        ):
            arrow = self.arrow
            if (
                arrow is not None
                and NUMBERS.issuperset(map(type, features.values()))
                and arrow.add(
                    spec, prediction_id, ts, latency_ms, error, trace_id, span_id, features, output
                )
            ):
                return []
            feats_json = numeric_json(features)
            if feats_json is not None:
                if output is None:
                    out_json = "null"
                elif type(output) is float:
                    assert plan.value_output is not None
                    out_json = plan.value_output % output
                else:
                    out_json = json_text(output)
                err_json = "null" if error is None else json_text(error)
                parts = (prediction_id, ts, latency_ms, err_json, trace_id, span_id)
                data = (plan.template % (*parts, feats_json, out_json)).encode()
                if len(data) <= self._config.max_record_bytes:
                    return [data]
        wire = {**NULL_OUTPUT, "value": output} if isinstance(output, float) else output
        base = {
            "model": spec.model,
            "version": spec.version,
            "slot": spec.slot,
            "ts": ts,
            "latency_ms": latency_ms,
            "error": error,
            "tags": spec.tags,
            "trace_id": trace_id,
            "span_id": span_id,
        }
        return self._finish(spec, base, prediction_id, dict(features), wire)

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
