"""Writers: where accepted batches go.

``DirectWriter`` inserts at once and answers 503 when the store fails. ``SpoolingWriter``
inserts at once while the store is healthy; when an insert fails it appends the batch to the
on-disk spool (fsync'd before the request is acknowledged) and a background thread replays the
spool once the store answers again. Only a full spool answers 503 with ``Retry-After``.
A batch the store keeps refusing while it otherwise answers queries (bad data, not an outage) is
moved to ``dead/`` after ``poison_attempts`` tries spread over at least ``poison_after_s``
seconds instead of blocking the spool (an insert-only outage, such as a server refusing writes
for a while, must not dead-letter good data).
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
from fastapi import HTTPException

from keelwatch.store import Store, StoreError

from ._spool import Spool, SpoolFull

__all__ = ["DirectWriter", "SpoolingWriter"]

_log = logging.getLogger("keelwatch.server")


def _unavailable(retry_after_s: int, message: str) -> HTTPException:
    return HTTPException(503, message, headers={"Retry-After": str(retry_after_s)})


class DirectWriter:
    """Insert into the store; a store failure is a 503 with ``Retry-After``."""

    def __init__(self, store: Store, retry_after_s: int = 5) -> None:
        self.store = store
        self.retry_after_s = retry_after_s

    def write(self, table: str, data: pa.Table, token: str) -> None:
        try:
            self.store.insert(table, data, token)
        except StoreError as exc:
            raise _unavailable(self.retry_after_s, "store unavailable, retry later") from exc

    def close(self) -> None:
        pass


class SpoolingWriter:
    """Insert, or spool durably when the store fails; replay the spool in the background."""

    def __init__(
        self,
        store: Store,
        spool: Spool,
        retry_interval_s: float = 1.0,
        retry_after_s: int = 5,
        poison_attempts: int = 5,
        poison_after_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.spool = spool
        self.retry_interval_s = retry_interval_s
        self.retry_after_s = retry_after_s
        self.poison_attempts = poison_attempts
        self.poison_after_s = poison_after_s
        self._clock = clock
        self._first_failure = 0.0
        self._healthy = spool.size == 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._failures = 0
        self._thread = threading.Thread(target=self._run, name="keelwatch-spool", daemon=True)
        self._thread.start()
        if spool.size:
            self._wake.set()

    @property
    def healthy(self) -> bool:
        """False while the store is failing or the spool still holds batches from an outage."""
        return self._healthy

    def write(self, table: str, data: pa.Table, token: str) -> None:
        if self._healthy:
            try:
                self.store.insert(table, data, token)
                return
            except StoreError as exc:
                _log.warning("store insert failed, spooling to disk: %s", exc)
                self._healthy = False
        try:
            self.spool.append(table, token, data)
        except SpoolFull as exc:
            raise _unavailable(self.retry_after_s, "store unavailable and spool full") from exc
        except OSError as exc:
            raise _unavailable(
                self.retry_after_s, f"store unavailable, spool failed: {exc}"
            ) from exc
        self._wake.set()

    def drain(self) -> bool:
        """Replay every spooled batch now; True when the spool is empty afterwards."""
        for segment in self.spool.seal():
            try:
                for batch in self.spool.read(segment):
                    self.store.insert(batch.table, batch.data, batch.token)
            except StoreError as exc:
                if self._set_aside(segment, exc):
                    continue
                return False
            self.spool.remove(segment)
            self._failures = 0
        self._healthy = self.spool.size == 0
        return self._healthy

    def _set_aside(self, segment: Path, exc: StoreError) -> bool:
        """Move ``segment`` to ``dead/`` if the store keeps refusing it while up."""
        try:
            self.store.query("SELECT 1 AS ok")
        except StoreError:
            return False  # an outage: keep everything and retry later
        self._failures += 1
        if self._failures == 1:
            self._first_failure = self._clock()
        refused_for = self._clock() - self._first_failure
        if self._failures >= self.poison_attempts and refused_for >= self.poison_after_s:
            dead = self.spool.directory / "dead"
            dead.mkdir(exist_ok=True)
            shutil.copy2(segment, dead / segment.name)
            self.spool.remove(segment)
            self._failures = 0
            _log.error("store refuses spooled batches in %s (%s); moved to %s", segment, exc, dead)
            return True
        return False

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.retry_interval_s)
            self._wake.clear()
            if self._stop.is_set():
                break
            if self.spool.size or not self._healthy:
                try:
                    self.drain()
                except Exception:  # the thread must survive anything a replay raises
                    _log.exception("spool replay failed")

    def close(self) -> None:
        """Stop the replay thread (spooled batches stay on disk for the next start)."""
        self._stop.set()
        self._wake.set()
        self._thread.join(10)
