"""Where sealed batches wait for the collector's acknowledgement: memory, or a disk spool.

The spool writes each batch (its exact gzip request body) to a file before the first attempt and
deletes it only once the collector answered 2xx or refused it for good. Files left by a crashed or
restarted process, or by this process in an earlier life (same pid after a container restart), are
adopted and replayed first, in the order they were written. The prediction ids make a replay of a
batch whose acknowledgement was lost harmless: the collector stores each id once.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from typing import NamedTuple, Protocol

from ._log import warn_limited

PATHS = {"p": "/v1/predictions", "o": "/v1/outcomes"}
#: Spool file kinds: URL path and whether the body is an Arrow IPC stream (else gzip JSON).
KINDS = {"p": (PATHS["p"], False), "o": (PATHS["o"], False), "a": (PATHS["p"], True)}
_KIND_OF = {v: k for k, v in KINDS.items()}


class Batch(NamedTuple):
    """A request body ready to send: sequence number, URL path, body (gzip JSON, or an Arrow IPC
    stream when ``arrow``), record count, and its spool file if any."""

    seq: int
    path: str
    body: bytes
    n_records: int
    file: str | None = None
    arrow: bool = False


class Outbox(Protocol):
    """Batches awaiting acknowledgement, oldest first; any of them may be acknowledged first
    (several requests are in flight at once)."""

    def push(self, batch: Batch) -> None: ...
    def head(self) -> Batch | None: ...
    def batches(self) -> Iterator[Batch]: ...
    def remove(self, batch: Batch) -> bool: ...
    def full(self) -> bool: ...
    def records(self) -> int: ...


class MemoryOutbox:
    """Batches in memory, at most ``max_records`` records (then the sender stops draining)."""

    def __init__(self, max_records: int) -> None:
        # Keyed by sequence number, in push order (which is sequence order).
        self._batches: dict[int, Batch] = {}
        self._records = 0
        self._max = max_records

    def push(self, batch: Batch) -> None:
        self._batches[batch.seq] = batch
        self._records += batch.n_records

    def head(self) -> Batch | None:
        return next(iter(self._batches.values()), None)

    def batches(self) -> Iterator[Batch]:
        """Oldest first; the outbox must not change while the iterator is in use."""
        return iter(self._batches.values())

    def get(self, seq: int) -> Batch | None:
        """The batch with sequence number ``seq``, if still here."""
        return self._batches.get(seq)

    def remove(self, batch: Batch) -> bool:
        """Take ``batch`` out (acknowledged or given up); False if it was not there."""
        if self._batches.pop(batch.seq, None) is None:
            return False
        self._records -= batch.n_records
        return True

    def full(self) -> bool:
        return self._records >= self._max

    def records(self) -> int:
        return self._records


class SpoolOutbox:
    """Batches as files ``<time_ns>-<pid>-<n>.<kind>.<records>.gz`` in ``directory`` (kind
    ``p`` predictions, ``o`` outcomes, both gzip JSON; ``a`` predictions as Arrow IPC)."""

    def __init__(self, directory: str, max_bytes: int, pid: int) -> None:
        os.makedirs(directory, exist_ok=True)
        self._dir = directory
        self._max = max_bytes
        self._pid = pid
        self._n = 0
        self._bytes = 0
        self._memory = MemoryOutbox(1 << 62)
        self._adopt()

    def _adopt(self) -> None:
        for name in os.listdir(self._dir):
            if name.endswith(".gz.tmp"):  # a write cut short by a crash: never acknowledged
                writer = name.split(".")[0].split("-")[1:2]
                if writer and writer[0].isdigit() and not _alive(int(writer[0])):
                    with contextlib.suppress(OSError):
                        os.unlink(os.path.join(self._dir, name))
        names = sorted(n for n in os.listdir(self._dir) if n.endswith(".gz"))
        # Sequence numbers below those of new batches (which start at 1), in file order.
        for seq, name in enumerate(names, start=-len(names)):
            try:
                stem, kind, count, _ = name.split(".")
                stamp, pid, n = stem.split("-")
                owner, records = int(pid), int(count)
            except ValueError:
                continue
            if owner != self._pid and _alive(owner):
                continue
            path = os.path.join(self._dir, name)
            if owner != self._pid:
                mine = os.path.join(self._dir, f"{stamp}-{self._pid}-{n}.{kind}.{count}.gz")
                try:
                    os.rename(path, mine)
                except OSError:
                    continue  # another process adopted it first
                path = mine
            try:
                with open(path, "rb") as fh:
                    body = fh.read()
            except OSError as exc:
                warn_limited("spool-read", "spool file %s unreadable: %s", path, exc)
                continue
            self._bytes += len(body)
            url, arrow = KINDS.get(kind, KINDS["p"])
            self._memory.push(Batch(seq, url, body, records, path, arrow))

    def push(self, batch: Batch) -> None:
        self._n += 1
        kind = _KIND_OF[batch.path, batch.arrow]
        name = f"{time.time_ns():020d}-{self._pid}-{self._n:08d}.{kind}.{batch.n_records}.gz"
        path = os.path.join(self._dir, name)
        try:
            # Owner-only: spooled records may hold what masking let through, but still private.
            fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(batch.body)
            os.replace(path + ".tmp", path)
        except OSError as exc:
            warn_limited("spool-write", "spool write to %s failed (%s); kept in memory", path, exc)
            path = ""
        self._bytes += len(batch.body)
        self._memory.push(batch._replace(file=path or None))

    def head(self) -> Batch | None:
        return self._memory.head()

    def batches(self) -> Iterator[Batch]:
        return self._memory.batches()

    def remove(self, batch: Batch) -> bool:
        stored = self._memory.get(batch.seq)  # the copy that knows its file
        if stored is None or not self._memory.remove(stored):
            return False
        self._bytes -= len(stored.body)
        if stored.file:
            try:
                os.unlink(stored.file)
            except OSError as exc:
                warn_limited("spool-unlink", "spool file %s not removed: %s", stored.file, exc)
        return True

    def full(self) -> bool:
        return self._bytes >= self._max

    def records(self) -> int:
        return self._memory.records()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True
