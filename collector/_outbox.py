"""Where sealed batches wait for the collector's acknowledgement: memory, or a disk spool.

The spool writes each batch (its exact gzip request body) to a file before the first attempt and
deletes it only once the collector answered 2xx or refused it for good. Files left by a crashed or
restarted process, or by this process in an earlier life (same pid after a container restart), are
adopted and replayed first, in the order they were written. The prediction ids make a replay of a
batch whose acknowledgement was lost harmless: the collector stores each id once.
"""

from __future__ import annotations

import collections
import contextlib
import os
import time
from typing import NamedTuple, Protocol

from ._log import warn_limited

PATHS = {"p": "/v1/predictions", "o": "/v1/outcomes"}
_KINDS = {v: k for k, v in PATHS.items()}


class Batch(NamedTuple):
    """A request body ready to send: sequence number, URL path, gzip JSON body, record count."""

    seq: int
    path: str
    body: bytes
    n_records: int
    file: str | None = None


class Outbox(Protocol):
    """FIFO of batches awaiting acknowledgement."""

    def push(self, batch: Batch) -> None: ...
    def head(self) -> Batch | None: ...
    def pop(self) -> None: ...
    def full(self) -> bool: ...
    def records(self) -> int: ...


class MemoryOutbox:
    """Batches in memory, at most ``max_records`` records (then the sender stops draining)."""

    def __init__(self, max_records: int) -> None:
        self._batches: collections.deque[Batch] = collections.deque()
        self._records = 0
        self._max = max_records

    def push(self, batch: Batch) -> None:
        self._batches.append(batch)
        self._records += batch.n_records

    def head(self) -> Batch | None:
        return self._batches[0] if self._batches else None

    def pop(self) -> None:
        self._records -= self._batches.popleft().n_records

    def full(self) -> bool:
        return self._records >= self._max

    def records(self) -> int:
        return self._records


class SpoolOutbox:
    """Batches as files ``<time_ns>-<pid>-<n>.<p|o>.<records>.gz`` in ``directory``."""

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
        for name in names:
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
            self._memory.push(Batch(-1, PATHS.get(kind, PATHS["p"]), body, records, path))

    def push(self, batch: Batch) -> None:
        self._n += 1
        kind = _KINDS[batch.path]
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

    def pop(self) -> None:
        batch = self._memory.head()
        self._memory.pop()
        if batch is None:
            return
        self._bytes -= len(batch.body)
        if batch.file:
            try:
                os.unlink(batch.file)
            except OSError as exc:
                warn_limited("spool-unlink", "spool file %s not removed: %s", batch.file, exc)

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
