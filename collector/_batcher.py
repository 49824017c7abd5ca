"""The sender's batching step: raw queue entries into sealed batches in the outbox.

Calls become records gathered in Arrow columns (``_arrow``) or encoded as JSON (``_records``):
once ``_BLOCK`` or more wait, up to the rest of the batch at once, each function's calls of the
common shape together (``Converter.calls``), anything else one entry at a time; only flush
markers keep their place (everything queued before one is sealed before it is reached). A batch
is sealed at ``batch_size`` records or about ``MAX_BATCH_BYTES``, at a flush marker, and when
the sender's interval says so (``seal_all``); each sealed batch takes the next sequence number
and goes to the outbox, gzip JSON or an uncompressed Arrow IPC stream.
"""

from __future__ import annotations

import collections
import operator
import sys
import zlib
from collections.abc import Callable, Sequence
from typing import Any

from ._arrow import MAX_BATCH_BYTES, ArrowRows, encode_json
from ._config import Config
from ._log import warn_limited
from ._outbox import PATHS, Batch, Outbox
from ._records import Converter, error_text
from ._spec import FlushMarker, RawCall, RawOutcome

__all__ = ["PREDICTIONS", "Batcher"]

# Level 1: on 20-float records about 5x less CPU than level 6 for a body about 10% larger.
_GZIP_LEVEL = 1
PREDICTIONS = PATHS["p"]
#: Queue entries converted as one block (``Converter.calls``) when at least this many wait.
_BLOCK = 64


_spec = operator.attrgetter("spec")


def _gzip(body: bytes) -> bytes:
    """A gzip member (header and CRC included) in one call, which releases the GIL."""
    return zlib.compress(body, _GZIP_LEVEL, wbits=31)


class Batcher:
    """Converts ``queue``'s entries into batches in ``outbox`` (set before the first ``drain``).

    ``flushed(marker)`` is called when a flush marker is reached, right after everything queued
    before it was sealed (``seq`` is then the last batch it waits for).
    """

    def __init__(
        self,
        config: Config,
        queue: collections.deque[Any],
        drop: Callable[[str, int], None],
        observe: Callable[[Sequence[RawCall]], None] | None,
        flushed: Callable[[FlushMarker], None],
    ) -> None:
        self._config = config
        self._queue = queue
        self._observe = observe
        self._flushed = flushed
        self._convert = Converter(config, drop)
        self._drop = drop
        self.outbox: Outbox | None = None
        self._pending: dict[str, list[bytes]] = {p: [] for p in PATHS.values()}
        self._pending_bytes: dict[str, int] = dict.fromkeys(PATHS.values(), 0)
        #: Arrow: once wanted (``wire_format``), until the collector or pyarrow refuses it.
        self.arrow_off = config.wire_format == "json"
        self._rows: ArrowRows | None = None
        self.seq = 0  # sequence number of the last sealed batch

    def _arrow_rows(self) -> ArrowRows | None:
        """The Arrow batch being gathered, when Arrow is wanted: ``wire_format="arrow"``, or
        ``"auto"`` once the service has imported pyarrow (never imported here for it)."""
        if (
            self._rows is None
            and not self.arrow_off
            and (self._config.wire_format == "arrow" or "pyarrow" in sys.modules)
        ):
            self._rows = ArrowRows(self._config.max_record_bytes)
        self._convert.arrow = self._rows
        return self._rows

    def drain(self, final: bool) -> None:
        """Convert queued entries: at most one batch worth unless ``final`` (then all), so that
        under sustained load sealed batches are sent while conversion goes on (rather than
        piling up until the outbox is full)."""
        queue = self._queue
        batch_size = self._config.batch_size
        budget = batch_size
        outbox = self._outbox()
        self._arrow_rows()
        while queue and (final or (budget > 0 and not outbox.full())):
            rows = self._rows
            if rows is not None:
                # A block at a time while the calls are the common kind, up to the batch's end.
                n = min(len(queue), batch_size - len(rows), len(queue) if final else budget)
                if n >= _BLOCK:
                    budget -= n
                    self._block([queue.popleft() for _ in range(n)])
                    continue
            budget -= 1
            self._one(queue.popleft())

    def _block(self, block: list[Any]) -> None:
        """Convert ``block`` (entries taken from the queue's front): everything before a flush
        marker before the marker; between markers, outcomes one by one and the calls of each
        function together (their order across functions and outcomes does not matter: each
        record carries its own id and time)."""
        kinds = list(map(type, block))
        if kinds.count(RawCall) == len(block):
            self._calls(block)
            return
        calls: list[RawCall] = []
        for entry, kind in zip(block, kinds, strict=True):
            if kind is RawCall:
                calls.append(entry)
                continue
            if kind is FlushMarker:
                self._calls(calls)
                calls = []
            self._one(entry)
        self._calls(calls)

    def _calls(self, calls: list[RawCall]) -> None:
        """The calls of a block, each function's together."""
        if len(calls) < _BLOCK:
            for entry in calls:
                self._one(entry)
            return
        specs = list(map(_spec, calls))
        if specs.count(specs[0]) == len(specs):
            self._run(calls)
            return
        by_spec: dict[Any, list[RawCall]] = {}
        for spec, entry in zip(specs, calls, strict=True):
            by_spec.setdefault(spec, []).append(entry)
        for group in by_spec.values():
            self._run(group)

    def _run(self, calls: list[RawCall]) -> None:
        """Calls of one function: at once while they fit (``Converter.calls``), else one by one."""
        while len(calls) >= _BLOCK and self._rows is not None:
            try:
                taken = self._convert.calls(calls)
            except Exception as exc:  # a bug here must not lose the calls: one by one instead
                warn_limited("convert", "block conversion failed: %s", error_text(exc))
                taken = None
            if taken is None:
                break
            try:
                if taken and self._observe is not None:
                    self._observe(calls[:taken])
                rows = self._rows
                full = rows is not None and len(rows) >= self._config.batch_size
                if taken < len(calls) or full:
                    self._seal_arrow()  # full (by count, or by bytes when some are left)
            except Exception as exc:  # the taken records are in the batch: go on with the rest
                warn_limited("convert", "block bookkeeping failed: %s", error_text(exc))
            calls = calls[taken:]
        for entry in calls:
            self._one(entry)

    def _one(self, entry: Any) -> None:
        try:
            if isinstance(entry, RawCall):
                if self._observe is not None:
                    self._observe((entry,))
                self._add(PREDICTIONS, self._convert.call(entry))
                rows = self._rows
                if rows is not None and (
                    len(rows) >= self._config.batch_size or rows.bytes >= MAX_BATCH_BYTES
                ):
                    self._seal_arrow()
            elif isinstance(entry, RawOutcome):
                record = self._convert.outcome(entry)
                self._add("/v1/outcomes", [] if record is None else [record])
            elif isinstance(entry, FlushMarker):
                self.seal_all()
                self._flushed(entry)
        except Exception as exc:
            warn_limited("convert", "record conversion failed: %s", error_text(exc))
            self._drop("internal_error", 1)

    def _add(self, path: str, records: list[bytes]) -> None:
        pending = self._pending[path]
        for data in records:
            pending.append(data)
            self._pending_bytes[path] += len(data) + 1
            if (
                len(pending) >= self._config.batch_size
                or self._pending_bytes[path] >= MAX_BATCH_BYTES
            ):
                self._seal(path)
                pending = self._pending[path]

    def seal_all(self) -> None:
        """Seal every batch being gathered."""
        if self._rows is not None and len(self._rows):
            self._seal_arrow()
        for path in PATHS.values():
            if self._pending[path]:
                self._seal(path)

    def _seal(self, path: str) -> None:
        records = self._pending[path]
        self._pending[path] = []
        self._pending_bytes[path] = 0
        body = b'{"records":[' + b",".join(records) + b"]}"
        self.seq += 1
        self._outbox().push(Batch(self.seq, path, _gzip(body), len(records)))

    def _seal_arrow(self) -> None:
        rows, self._rows = self._rows, None
        if rows is not None and len(rows):
            try:
                body = rows.body()
            except Exception as exc:  # pyarrow missing, broken or too old
                self._stop_arrow(rows, f"cannot write Arrow ({error_text(exc)})")
                self._seal(PREDICTIONS)
                return
            self.seq += 1
            self._outbox().push(Batch(self.seq, PREDICTIONS, body, len(rows), arrow=True))
        self._arrow_rows()  # the next batch's columns

    def stop_arrow(self, why: str) -> None:
        """JSON from now on (the collector refused Arrow); the records gathered so far are
        re-encoded as JSON."""
        self._stop_arrow(self._rows, why)

    def _stop_arrow(self, rows: ArrowRows | None, why: str) -> None:
        warn_limited("arrow", "%s; sending JSON from now on", why)
        self.arrow_off = True
        self._rows = self._convert.arrow = None
        if rows is not None and len(rows):
            self._add(PREDICTIONS, encode_json(rows.records()))

    def _outbox(self) -> Outbox:
        assert self.outbox is not None, "the sender sets the outbox first"
        return self.outbox
