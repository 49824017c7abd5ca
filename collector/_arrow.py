"""Prediction records as an Arrow IPC stream: the sender's cheaper encoding, when it applies.

Printing 20 floats as JSON costs the sender about 15-30 us per record and the collector about as
much to parse them back; the same record kept column by column and written as an Arrow IPC
stream costs a few microseconds on each side (docs/sdk.md). The collector takes such a body on
the same ``POST /v1/predictions`` (``Content-Type: application/vnd.apache.arrow.stream``, the
columns of docs/ingest-api.md: ``features.<name>``, ``tags.<name>``, ``output.<key>``...).

pyarrow is used only when the service already imported it (pandas 2 does) or asked for Arrow with
``wire_format="arrow"``; this module imports it only when a batch is sealed. Rows are gathered
as plain lists while converting (feature values are copied out of the caller's dict at once);
the records that fit the common shape (unmasked, ``str`` feature names, finite ``int``/``float``
feature values, a float, a mapped or no output) come here, every other record stays JSON.
"""

from __future__ import annotations

import json
import math
import operator
import sys
from collections.abc import Callable, Mapping, Sequence
from itertools import chain, repeat
from typing import Any

from ._plan import NUMBERS
from ._spec import MonitorSpec

ARROW_STREAM = "application/vnd.apache.arrow.stream"
#: The collector's limits (docs/ingest-api.md): a column name the collector refuses would refuse
#: the whole batch, so records that break them go as JSON and are refused one by one.
MAX_NAME_LEN = 128
MAX_FEATURES = 2000
#: Bytes of records (estimated) in one batch; the collector takes bodies up to 16 MiB.
MAX_BATCH_BYTES = 4 * 1024 * 1024
_OUTPUT_KEYS = ("label", "value", "proba", "text", "prompt_tokens", "completion_tokens")
_LONG_TEXT = 1024  # outputs with longer text take the JSON path and its size cap


def _record_bytes(width: int) -> int:
    """Estimated bytes of one record of ``width`` float features in the batch (no error text)."""
    return 96 + 9 * width


def _name_ok(name: object) -> bool:
    return type(name) is str and 0 < len(name) <= MAX_NAME_LEN


class ArrowRows:
    """Prediction records of one batch being gathered, column by column.

    ``add`` takes a record (or refuses it: then it goes as JSON); ``body`` writes the batch.
    """

    def __init__(self, max_record_bytes: int) -> None:
        self._max_record_bytes = max_record_bytes
        # One tuple per record (one append on the hot loop; transposed when sealed):
        # (prediction_id, ts, latency_ms, error, trace_id, span_id, spec number, output), the
        # output being None, a float (the output's value) or a wire dict.
        self._rows: list[tuple[Any, ...]] = []
        self._specs: dict[MonitorSpec, int] = {}
        self._mapped = False  # whether any output is a wire dict
        # Feature names of the records -> (their row numbers, their values one row after the
        # other, bytes per record): most batches hold one group (one function, one feature set).
        self._groups: dict[tuple[str, ...], tuple[list[int], list[Any], int]] = {}
        self._names: set[str] = set()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._rows)

    def add(
        self,
        spec: MonitorSpec,
        prediction_id: str,
        ts: float,
        latency_ms: float,
        error: str | None,
        trace_id: str,
        span_id: str,
        features: dict[str, Any],
        output: float | dict[str, Any] | None,
    ) -> bool:
        """Keep one record (its feature values must be ``int``/``float``, checked by the
        caller); False when it must go as JSON instead."""
        keys = tuple(features)
        group = self._groups.get(keys)
        if group is None:
            if not self._admit(keys):
                return False
            group = self._groups[keys] = ([], [], _record_bytes(len(keys)))
            self._names.update(keys)
        spec_row = self._specs.get(spec)
        if spec_row is None:
            # Functions with different tag names share a batch: the collector reads a null
            # tag as an absent one.
            if not all(map(_name_ok, spec.tags)):
                return False
            spec_row = self._specs[spec] = len(self._specs)
        if isinstance(output, dict):
            if not _output_ok(output):
                return False
            self._mapped = True
            self.bytes += 9 * len(output.get("proba") or ()) + len(output.get("text") or "")
        rows = self._rows
        group[0].append(len(rows))
        group[1].extend(features.values())
        rows.append((prediction_id, ts, latency_ms, error, trace_id, span_id, spec_row, output))
        self.bytes += group[2] if error is None else group[2] + len(error)
        return True

    def add_block(
        self,
        spec: MonitorSpec,
        prediction_ids: Sequence[str],
        ts: Sequence[float],
        latency_ms: Sequence[float],
        outputs: Sequence[float],
        features: Sequence[dict[str, Any]],
    ) -> int | None:
        """Keep the records of a block of calls of one function at once: all with the same
        feature names, all values ``int``/``float`` (both checked here, in C-level passes over
        the block), no error, no trace ids, a float output. ``None`` when the block does not
        fit that shape (nothing kept: its records go one by one); else how many records from
        its start were kept, fewer than all when the batch's byte budget ends.
        """
        keys = tuple(features[0])
        width = len(keys)
        if not width or set(map(len, features)) != {width}:
            return None
        # Values by name, in the first record's order: a record lacking a name raises, and with
        # the lengths equal, every record has exactly these names (in whatever order).
        pick = operator.itemgetter(*keys)
        try:
            values = (
                list(map(pick, features))
                if width == 1
                else list(chain.from_iterable(map(pick, features)))
            )
        except KeyError:
            return None
        if not NUMBERS.issuperset(map(type, values)):
            return None
        group = self._groups.get(keys)
        per = _record_bytes(width) if group is None else group[2]
        if group is None and not self._admit(keys):
            return None
        spec_row = self._specs.get(spec)
        if spec_row is None and not all(map(_name_ok, spec.tags)):
            return None
        n = min(len(features), (MAX_BATCH_BYTES - self.bytes) // per)
        if n <= 0:
            return None if not self._rows else 0
        if group is None:
            group = self._groups[keys] = ([], [], per)
            self._names.update(keys)
        if spec_row is None:
            spec_row = self._specs[spec] = len(self._specs)
        rows = self._rows
        start = len(rows)
        rows.extend(
            zip(
                prediction_ids[:n], ts[:n], latency_ms[:n], repeat(None, n), repeat("", n),
                repeat("", n), repeat(spec_row, n), outputs[:n], strict=True,
            )
        )  # fmt: skip
        group[0].extend(range(start, start + n))
        group[1].extend(values if n == len(features) else values[: n * width])
        self.bytes += per * n
        return n

    def _admit(self, keys: tuple[str, ...]) -> bool:
        if not all(map(_name_ok, keys)) or len(self._names.union(keys)) > MAX_FEATURES:
            return False
        # The JSON path drops a record over max_record_bytes: let it decide near that size.
        return 128 + sum(len(k) + 28 for k in keys) <= self._max_record_bytes // 2

    def body(self) -> bytes:
        """The batch as one Arrow IPC stream (imports pyarrow)."""
        import pyarrow as pa
        import pyarrow.ipc as ipc

        columns = self._columns(pa)
        table = pa.Table.from_pydict(columns)
        sink = pa.BufferOutputStream()
        with ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        body: bytes = sink.getvalue().to_pybytes()
        return body

    def _columns(self, pa: Any) -> dict[str, Any]:
        import pyarrow.compute as pc

        n = len(self._rows)
        ids, ts, latency, errors, traces, spans, spec_rows, outputs = zip(*self._rows, strict=True)
        specs = list(self._specs)
        rows = pa.array(spec_rows, pa.int32())

        def per_spec(values: list[str | None]) -> Any:
            # One entry per decorated function, and an index per record: no per-record strings.
            return pa.DictionaryArray.from_arrays(rows, pa.array(values, pa.string()))

        def floats(values: Sequence[Any]) -> Any:
            try:
                array = pa.array(values, pa.float64())
            except (pa.ArrowInvalid, OverflowError, TypeError):  # e.g. an int past 2**53
                array = pa.array([_finite(v) for v in values], pa.float64())
            finite = pc.is_finite(array)
            if not pc.all(finite).as_py():  # NaN and infinities are "missing", as in JSON
                array = pc.if_else(finite, array, pa.scalar(None, pa.float64()))
            return array

        columns: dict[str, Any] = {
            "prediction_id": pa.array(ids, pa.string()),
            "model": per_spec([s.model for s in specs]),
            "version": per_spec([s.version for s in specs]),
            "slot": per_spec([s.slot for s in specs]),
            "ts": pa.array(ts, pa.float64()),
            "latency_ms": pa.array(latency, pa.float64()),
        }
        tag_names = sorted({str(k) for s in specs for k in s.tags})
        for name in tag_names:
            columns["tags." + name] = per_spec(
                [None if name not in s.tags else str(s.tags[name]) for s in specs]
            )
        if any(errors):
            columns["error"] = pa.array(errors, pa.string())
        if any(traces):
            columns["trace_id"] = pa.array(traces, pa.string())
            columns["span_id"] = pa.array(spans, pa.string())
        if len(self._groups) == 1:
            [(keys, (_, flat, _))] = self._groups.items()
            columns.update(_feature_columns(pa, keys, flat, floats))
        else:
            for name in sorted(self._names):
                values: list[Any] = [None] * n
                for keys, (numbers, flat, _) in self._groups.items():
                    if name in keys:
                        column = flat[keys.index(name) :: len(keys)]
                        for row, value in zip(numbers, column, strict=True):
                            values[row] = value
                columns["features." + name] = floats(values)
        columns.update(self._output_columns(pa, outputs, floats))
        return columns

    def _output_columns(
        self, pa: Any, outputs: Sequence[Any], floats: Callable[[Sequence[Any]], Any]
    ) -> dict[str, Any]:
        if not self._mapped:
            if all(o is None for o in outputs):
                return {}
            return {"output.value": floats(outputs)}
        wires = [
            o if o is None or type(o) is not float else {"value": o} for o in outputs
        ]  # fmt: skip
        columns: dict[str, Any] = {}
        for key in _OUTPUT_KEYS:
            values = [None if w is None else w.get(key) for w in wires]
            if all(v is None for v in values):
                continue
            if key in ("label", "text"):
                columns["output." + key] = pa.array(values, pa.string())
            elif key == "proba":
                columns["output.proba"] = pa.array(values, pa.list_(pa.float64()))
            elif key == "value":
                columns["output.value"] = floats(values)
            else:
                columns["output." + key] = pa.array(values, pa.int64())
        return columns

    def records(self) -> list[dict[str, Any]]:
        """The batch as wire record dicts (the JSON fallback when Arrow cannot be written)."""
        specs = list(self._specs)
        features: list[dict[str, Any]] = [{} for _ in self._rows]
        for keys, (numbers, flat, _) in self._groups.items():
            width = len(keys)
            for i, row in enumerate(numbers):
                values = map(_finite, flat[i * width : (i + 1) * width])
                features[row] = dict(zip(keys, values, strict=True))
        out = []
        for i, (pid, ts, latency, error, trace, span, spec_row, output) in enumerate(self._rows):
            spec = specs[spec_row]
            if type(output) is float:
                output = {**dict.fromkeys(_OUTPUT_KEYS), "value": output}
            out.append(
                {
                    "prediction_id": pid,
                    "model": spec.model,
                    "version": spec.version,
                    "slot": spec.slot,
                    "ts": ts,
                    "latency_ms": latency,
                    "error": error,
                    "tags": {str(k): str(v) for k, v in spec.tags.items()},
                    "trace_id": trace,
                    "span_id": span,
                    "features": features[i],
                    "output": output,
                }
            )
        return out


def _feature_columns(
    pa: Any, keys: tuple[str, ...], flat: list[Any], floats: Callable[[Sequence[Any]], Any]
) -> dict[str, Any]:
    """The feature columns of a batch whose records share one feature set, ``flat`` holding
    their values record after record.

    With NumPy (pyarrow brings it), the values become one float matrix in a single C loop and
    each column is a contiguous row of its transpose: about 0.5 us per 20-feature record
    against about 0.9 us for one ``pa.array`` per column over strided slices of the list.
    """
    width = len(keys)
    np = sys.modules.get("numpy")
    if np is not None:
        try:
            matrix = np.array(flat, dtype=np.float64).reshape(-1, width).T.copy()
        except (OverflowError, TypeError, ValueError):  # an int past float's range
            matrix = None
        if matrix is not None:
            finite = np.isfinite(matrix)
            if finite.all():
                return {"features." + k: pa.array(matrix[j]) for j, k in enumerate(keys)}
            missing = ~finite  # NaN and infinities are "missing", as in JSON
            return {
                "features." + k: pa.array(matrix[j], mask=missing[j]) for j, k in enumerate(keys)
            }
    return {"features." + k: floats(flat[j::width]) for j, k in enumerate(keys)}


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (OverflowError, TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _output_ok(output: Mapping[str, Any]) -> bool:
    proba = output.get("proba")
    if proba is not None and any(p is None for p in proba):
        return False  # the collector refuses the record: let the JSON path say so per record
    text, label = output.get("text"), output.get("label")
    return len(text or "") + len(label or "") <= _LONG_TEXT


def decode(body: bytes) -> list[dict[str, Any]]:
    """The wire records of an Arrow IPC prediction body (``features.x`` -> ``features["x"]``;
    null features and tags left out), e.g. to inspect what ``InMemoryTransport`` received."""
    import pyarrow as pa
    import pyarrow.ipc as ipc

    table = ipc.open_stream(pa.py_buffer(body)).read_all()
    records = []
    for row in table.to_pylist():
        record: dict[str, Any] = {"error": None, "trace_id": "", "span_id": ""}
        record.update(features={}, tags={}, output=None)
        for name, value in row.items():
            group, dot, key = name.partition(".")
            if not dot:
                record[name] = value
            elif group == "output":
                if value is not None:
                    record["output"] = record["output"] or dict.fromkeys(_OUTPUT_KEYS)
                    record["output"][key] = value
            elif value is not None:
                record[group][key] = value
        records.append(record)
    return records


def encode_json(records: Sequence[dict[str, Any]]) -> list[bytes]:
    """Compact JSON of each record (the fallback of an Arrow batch)."""
    encoder = json.JSONEncoder(separators=(",", ":"), allow_nan=False)
    return [encoder.encode(r).encode() for r in records]
