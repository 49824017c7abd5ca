"""Group commit: batches from concurrent requests become one insert.

An insert into ClickHouse has a fixed cost (a new part: about 20-40 ms in chDB here) that
dwarfs the cost of 1,000 rows, so inserting each request's batch on its own caps ingest at a few
tens of thousands of rows per second. Requests hand their batch to one flusher thread and wait;
while it inserts, the next requests queue up, and the flusher takes them all at once next time
(no timer: an idle server inserts a lone batch at once). Each request is answered only after the
inner writer took its group: inserted (``DirectWriter``) or appended to the fsync'd spool and
queued for a larger insert behind (``SpoolingWriter``), so acknowledgement still means durable.

Deduplication: the combined insert's token is the hash of its batches' tokens, and the tokens of
recently written batches are remembered, so a retried request is dropped here even when it
lands in a different group. Beyond that memory (``recent`` batches, or after a restart) a
retried record is collapsed by ``ReplacingMergeTree``; exact reads use ``FINAL``.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from ._state import Writer

__all__ = ["CoalescingWriter"]


@dataclass
class _Pending:
    table: str
    data: pa.Table
    token: str
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


class CoalescingWriter:
    """A :class:`Writer` that merges concurrent batches into inserts of up to ``max_rows``."""

    def __init__(
        self,
        inner: Writer,
        max_rows: int = 200_000,
        recent: int = 100_000,
        min_rows: int = 0,
        linger_s: float = 0.0,
    ) -> None:
        if max_rows <= 0 or recent < 0 or linger_s < 0:
            raise ValueError("max_rows must be > 0, recent and linger_s >= 0")
        self.inner = inner
        self.min_rows = min_rows
        self.linger_s = linger_s
        self.max_rows = max_rows
        self.recent = recent
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._queue: list[_Pending] = []
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="keelwatch-coalesce", daemon=True)
        self._thread.start()

    def __getattr__(self, name: str) -> Any:
        # ``spool``, ``healthy``, ``drain``... of the wrapped writer.
        return getattr(self.inner, name)

    def write(self, table: str, data: pa.Table, token: str) -> None:
        """Queue the batch and wait until it is written; raises what the inner writer raised."""
        pending = _Pending(table, data, token)
        with self._lock:
            if token in self._seen:
                return
            if self._closed:
                raise RuntimeError("writer is closed")
            self._queue.append(pending)
            self._wake.notify()
        pending.done.wait()
        if pending.error is not None:
            raise pending.error

    def _take(self) -> list[_Pending]:
        with self._lock:
            while not self._queue and not self._closed:
                self._wake.wait()
            if self.linger_s > 0 and not self._closed:
                deadline = time.monotonic() + self.linger_s
                while sum(p.data.num_rows for p in self._queue) < self.min_rows:
                    left = deadline - time.monotonic()
                    if left <= 0 or self._closed:
                        break
                    self._wake.wait(left)
            taken: list[_Pending] = []
            rows = 0
            while self._queue and (
                not taken or rows + self._queue[0].data.num_rows <= self.max_rows
            ):
                item = self._queue.pop(0)
                taken.append(item)
                rows += item.data.num_rows
            return taken

    def _flush(self, group: list[_Pending]) -> None:
        by_table: dict[str, list[_Pending]] = {}
        for item in group:
            by_table.setdefault(item.table, []).append(item)
        for table, items in by_table.items():
            unique: dict[str, _Pending] = {}
            for item in items:
                if item.token not in self._seen:
                    unique.setdefault(item.token, item)
            try:
                if unique:
                    data = pa.concat_tables([item.data for item in unique.values()])
                    joined = "\0".join(sorted(unique)).encode()
                    self.inner.write(table, data, hashlib.sha256(joined).hexdigest())
            except BaseException as exc:  # handed to every waiting request
                for item in items:
                    item.error = exc
            else:
                with self._lock:
                    for token in unique:
                        self._seen[token] = None
                    while len(self._seen) > self.recent:
                        self._seen.popitem(last=False)
            for item in items:
                item.done.set()

    def _run(self) -> None:
        while True:
            group = self._take()
            if not group:
                return
            self._flush(group)

    def close(self) -> None:
        """Write what is queued, stop the flusher, close the inner writer."""
        with self._lock:
            self._closed = True
            self._wake.notify()
        self._thread.join(30)
        self.inner.close()
