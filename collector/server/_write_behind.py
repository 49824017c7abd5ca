"""Write-behind (``SpoolingWriter``): a batch is appended to the on-disk spool (fsync'd) and the
request acknowledged; one inserter thread then inserts everything spooled meanwhile as one
insert of up to ``max_rows`` rows. An insert has a fixed
cost of tens of milliseconds (new parts for the table and its rollup view, more merges later),
so inserting 1,000-row requests one by one, or in the groups that happen to wait behind the
previous insert, spent most of the server's CPU there; write-behind groups grow with the load
(whatever arrives during one insert goes into the next) without holding any request.

Reads stay consistent: an embedded store consults :meth:`SpoolingWriter.barrier` before each
statement that names a table with batches still in flight, and waits for them (bounded by
``barrier_timeout_s``), so a query sees every row acknowledged before it started. A ClickHouse
server read by other processes lags by up to one insert (see docs/server.md).

When the store fails, batches stay in the spool (the memory copy is dropped past
``memory_rows``) and the same insert is retried every ``retry_interval_s``; only a full spool
answers 503 with ``Retry-After``. A batch the store keeps refusing while it otherwise answers
queries (bad data, not an outage) is retried alone and moved to ``dead/`` after
``poison_attempts`` tries spread over at least ``poison_after_s`` seconds (an insert-only outage,
such as a server refusing writes for a while, must not dead-letter good data).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow as pa

from keelwatch.store import Store, StoreError

from ._spool import Spool, SpoolFull, SpoolRecord, SpoolRef
from ._writer import unavailable

__all__ = ["SpoolingWriter", "group_token"]

_log = logging.getLogger("keelwatch.server")


#: Tables whose pending batches a read waits for (``predictions`` also covers its rollup).
_INGESTED = ("predictions", "outcomes", "spans")


def group_token(tokens: list[str]) -> str:
    """The deduplication token of batches inserted together (the same set, the same token)."""
    return hashlib.sha256("\0".join(sorted(tokens)).encode()).hexdigest()


@dataclass
class _Entry:
    """A spooled batch not yet stored; ``data`` is None once dropped from memory."""

    table: str
    token: str
    ref: SpoolRef
    rows: int
    seq: int
    data: pa.Table | None


@dataclass
class _Unit:
    """Batches that must be inserted together as ``token`` (a group logged before a restart),
    or one batch free to join its neighbours (``token`` None)."""

    table: str
    entries: list[_Entry] = field(default_factory=list)
    token: str | None = None


class SpoolingWriter:
    """Spool durably, acknowledge, insert behind in large groups; replay the spool at start."""

    def __init__(
        self,
        store: Store,
        spool: Spool,
        retry_interval_s: float = 1.0,
        retry_after_s: int = 5,
        poison_attempts: int = 5,
        poison_after_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        max_rows: int = 200_000,
        min_rows: int = 50_000,
        linger_s: float = 0.25,
        memory_rows: int = 500_000,
        recent: int = 100_000,
        barrier_timeout_s: float = 10.0,
    ) -> None:
        if max_rows <= 0 or min(min_rows, memory_rows, recent) < 0:
            raise ValueError("max_rows must be > 0; min_rows, memory_rows, recent >= 0")
        if linger_s < 0 or barrier_timeout_s < 0:
            raise ValueError("linger_s and barrier_timeout_s must be >= 0")
        self.store = store
        self.spool = spool
        self.retry_interval_s = retry_interval_s
        self.retry_after_s = retry_after_s
        self.poison_attempts = poison_attempts
        self.poison_after_s = poison_after_s
        self.max_rows = max_rows
        self.min_rows = min_rows
        self.linger_s = linger_s
        self.memory_rows = memory_rows
        self.recent = recent
        self.barrier_timeout_s = barrier_timeout_s
        self._clock = clock
        self._first_failure = 0.0
        self._failures = 0
        self._solo = False  # after a refusal, insert batches one by one to find the bad one
        self._healthy = True
        self._retry_at = 0.0
        self._closed = False
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._inserting = threading.Lock()  # one insert at a time (thread or ``drain``)
        self._queue: deque[_Unit] = deque()
        self._queued: set[str] = set()
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._held_rows = 0
        self._queued_rows = 0
        self._oldest = 0.0  # when the batch at the head of an empty queue arrived
        self._hurry = 0  # readers waiting at the barrier: insert without lingering
        self._seq = 0  # batches queued so far, and the last one stored
        self._stored = 0
        self._local = threading.local()
        self._recover()
        self._thread = threading.Thread(target=self._run, name="keelwatch-insert", daemon=True)
        self._thread.start()
        self._install: Callable[[Callable[[str], None] | None], None] | None
        self._install = getattr(store, "set_read_barrier", None)
        if self._install is not None:
            self._install(self.barrier)

    @property
    def healthy(self) -> bool:
        """False from a failed insert until an insert succeeds again."""
        return self._healthy

    # -- requests -------------------------------------------------------------------------

    def write(self, table: str, data: pa.Table, token: str) -> None:
        """Spool ``data`` durably and queue it for insertion; 503 if the spool cannot take it."""
        with self._lock:
            if self._closed:
                raise RuntimeError("writer is closed")
            if token in self._seen or token in self._queued:
                return  # a retry of a batch already stored or spooled
        try:
            ref = self.spool.append(table, token, data)
        except SpoolFull as exc:
            raise unavailable(self.retry_after_s, "store unavailable and spool full") from exc
        except OSError as exc:
            raise unavailable(self.retry_after_s, f"spool failed: {exc}") from exc
        with self._lock:
            keep = self._held_rows + data.num_rows <= self.memory_rows
            self._held_rows += data.num_rows if keep else 0
            self._seq += 1
            entry = _Entry(table, token, ref, data.num_rows, self._seq, data if keep else None)
            first = not self._queue
            if first:
                self._oldest = time.monotonic()
            self._queue.append(_Unit(table, [entry]))
            self._queued.add(token)
            self._queued_rows += entry.rows
            if first or self._queued_rows >= self.min_rows or self._hurry:
                self._changed.notify_all()  # an idle inserter starts its linger

    def barrier(self, sql: str) -> None:
        """Wait until every batch queued before this call is stored, if ``sql`` names a table
        with batches in flight (the store calls this before running a statement).

        Returns at once on the inserter thread, while the store is failing (spooled batches then
        wait for it), and after ``barrier_timeout_s``.
        """
        if getattr(self._local, "inserter", False):
            return
        with self._lock:
            if not self._queue or not any(name in sql for name in _INGESTED):
                return
            target = self._seq
            deadline = time.monotonic() + self.barrier_timeout_s
            self._hurry += 1
            self._changed.notify_all()
            try:
                while self._stored < target and self._healthy and not self._closed:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        _log.warning("read waited %.1f s for inserts", self.barrier_timeout_s)
                        return
                    self._changed.wait(left)
            finally:
                self._hurry -= 1

    # -- inserting ------------------------------------------------------------------------

    def _recover(self) -> None:
        """Queue what a previous process spooled and did not store (a restart or a crash)."""
        records = [r for segment in self.spool.seal() for r in self.spool.scan(segment)]
        batches: dict[str, tuple[int, SpoolRecord]] = {}
        for order, record in enumerate(records):
            if not record.members and record.token not in batches:
                batches[record.token] = (order, record)
                self.spool.track(record.ref)
        claimed: set[str] = set()
        units: list[tuple[int, _Unit]] = []
        for record in records:
            members = record.members
            if members and all(m in batches and m not in claimed for m in members):
                # Possibly stored already: the same token makes the engine drop it if so.
                claimed.update(members)
                unit = _Unit(record.table, [], record.token)
                units.append((min(batches[m][0] for m in members), unit))
                for m in sorted(members, key=lambda m: batches[m][0]):
                    unit.entries.append(self._recovered(batches[m][1]))
        for token, (order, record) in batches.items():
            if token not in claimed:
                entry = self._recovered(record)
                units.append((order, _Unit(record.table, [entry])))
        for _, unit in sorted(units, key=lambda u: u[0]):
            for entry in unit.entries:
                self._seq += 1
                entry.seq = self._seq
                self._queued.add(entry.token)
            self._queue.append(unit)
        if not self._queue:
            self.spool.collect()

    @staticmethod
    def _recovered(record: SpoolRecord) -> _Entry:
        return _Entry(record.table, record.token, record.ref, record.rows, 0, None)

    def _take(self) -> list[_Unit]:
        """The next insert: a forced group alone, else consecutive batches of one table."""
        with self._lock:
            if not self._queue:
                return []
            first = self._queue[0]
            if self._solo and len(first.entries) > 1:  # a logged group the store refuses
                self._queue.popleft()
                self._queue.extendleft(_Unit(e.table, [e]) for e in reversed(first.entries))
                first = self._queue[0]
            if first.token is not None or self._solo:
                return [first]
            taken, rows = [first], first.entries[0].rows
            for unit in list(self._queue)[1:]:
                if unit.token is not None or unit.table != first.table:
                    break
                if rows + unit.entries[0].rows > self.max_rows:
                    break
                taken.append(unit)
                rows += unit.entries[0].rows
            return taken

    def _step(self) -> bool:
        """Attempt one insert from the head of the queue; False if the store refused it."""
        units = self._take()
        if not units:
            return True
        entries = [e for u in units for e in u.entries]
        table = units[0].table
        try:
            tables = [e.data if e.data is not None else self.spool.load(e.ref) for e in entries]
            data = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
            if units[0].token is not None:
                token = units[0].token
            elif len(entries) == 1:
                token = entries[0].token
            else:
                token = group_token([e.token for e in entries])
                self.spool.append_group(table, token, [e.token for e in entries])
            self.store.insert(table, data, token)
        except StoreError as exc:
            return self._refused(units, exc)
        self._stored_units(units)
        return True

    def _stored_units(self, units: list[_Unit]) -> None:
        entries = [e for u in units for e in u.entries]
        for entry in entries:
            self.spool.done(entry.ref)
        with self._lock:
            for _ in units:
                self._queue.popleft()
            for entry in entries:
                self._queued.discard(entry.token)
                self._queued_rows -= entry.rows
                self._seen[entry.token] = None
                if entry.data is not None:
                    self._held_rows -= entry.rows
            while len(self._seen) > self.recent:
                self._seen.popitem(last=False)
            self._stored = entries[-1].seq
            self._healthy = True
            self._failures = 0
            self._solo = False
            idle = not self._queue
            self._oldest = time.monotonic()  # the rest waited during the insert: enough
            self._changed.notify_all()
        if idle:
            self.spool.collect()

    def _refused(self, units: list[_Unit], exc: StoreError) -> bool:
        """Note a refused insert; True if its batch was set aside (the queue moves on)."""
        if self._healthy:
            _log.warning("store insert failed; batches stay spooled: %s", exc)
        with self._lock:
            self._healthy = False
            self._retry_at = time.monotonic() + self.retry_interval_s
            self._changed.notify_all()
        try:
            self.store.query("SELECT 1 AS ok")
        except StoreError:
            return False  # an outage: keep everything and retry later
        if len(units) > 1 or len(units[0].entries) > 1:
            self._solo = True  # the store is up: find the batch it refuses
            return False
        self._failures += 1
        if self._failures == 1:
            self._first_failure = self._clock()
        refused_for = self._clock() - self._first_failure
        if self._failures >= self.poison_attempts and refused_for >= self.poison_after_s:
            (entry,) = units[0].entries
            dead = self.spool.set_aside(entry.ref)
            _log.error("store refuses a spooled batch (%s); moved to %s", exc, dead)
            self._stored_units(units)
            return True
        return False

    def drain(self) -> bool:
        """Insert every queued batch now; True when none is left."""
        with self._inserting:
            self._local.inserter = True
            try:
                while self._queue:
                    if not self._step():
                        return False
                return True
            finally:
                self._local.inserter = False

    def _run(self) -> None:
        self._local.inserter = True
        while True:
            with self._lock:
                while True:
                    if not self._queue:
                        if self._closed:
                            return
                        self._changed.wait()
                        continue
                    now = time.monotonic()
                    if self._closed or self._hurry:
                        break
                    if not self._healthy:
                        wait = self._retry_at - now  # new batches do not hasten a retry
                    elif self._queued_rows < self.min_rows:
                        wait = self._oldest + self.linger_s - now
                    else:
                        break
                    if wait <= 0:
                        break
                    self._changed.wait(wait)
            with self._inserting:
                try:
                    stored = self._step()
                except Exception:  # the thread must survive anything an insert raises
                    _log.exception("spooled insert failed")
                    stored = False
            if not stored and self._closed:
                return  # closing during an outage: the spool keeps the rest

    def close(self) -> None:
        """Insert what is queued (unless the store fails), stop the inserter; what is left stays
        spooled for the next start."""
        with self._lock:
            self._closed = True
            self._changed.notify_all()
        self._thread.join(60)
        if self._install is not None:
            self._install(None)
            self._install = None
