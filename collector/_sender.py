"""The background sender: one daemon thread per client (and per process after a fork).

Each cycle it drains the raw queue into encoded records, seals batches by size or interval into
the outbox (memory or spool), and sends the outbox head when its retry time has come: on a
short-lived thread, one request at a time, while the loop goes on converting (the wait for the
collector releases the GIL, so under load conversion and the collector's work overlap). 2xx
acknowledges; 429/503 wait for Retry-After (else back off); other 4xx drop the batch for good; 5xx
and transport errors back off exponentially with jitter, and without a spool give up after
``max_retries``. Nothing here raises: each failure is counted by reason and logged, rate-limited.
"""

from __future__ import annotations

import collections
import contextlib
import json
import random
import threading
import zlib
from collections.abc import Callable, Mapping
from typing import Any

from ._config import Config
from ._log import warn_limited
from ._outbox import PATHS, Batch, Outbox
from ._records import Converter, error_text
from ._spec import FlushMarker, RawCall, RawOutcome
from ._transport import SendResult, Transport

_MAX_BATCH_BYTES = 4 * 1024 * 1024
_MAX_RETRY_AFTER = 300.0
# Level 1: on 20-float records about 5x less CPU than level 6 for a body about 10% larger.
_GZIP_LEVEL = 1


def _gzip(body: bytes) -> bytes:
    """A gzip member (header and CRC included) in one call, which releases the GIL."""
    return zlib.compress(body, _GZIP_LEVEL, wbits=31)


class Sender:
    """Drains ``queue`` and ships it through ``transport`` (run ``run`` on a thread)."""

    def __init__(
        self,
        config: Config,
        transport: Transport,
        queue: collections.deque[Any],
        wake: threading.Event,
        stop: threading.Event,
        outbox: Callable[[], Outbox],
        drop: Callable[[str, int], None],
        sent: Callable[[int], None],
        observe: Callable[[RawCall], None] | None,
        clock: Callable[[], float],
        headers: Mapping[str, str],
        tick: Callable[[], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._config = config
        self._transport = transport
        self._queue = queue
        self._wake = wake
        self._stop = stop
        self._make_outbox = outbox
        self._drop = drop
        self._sent = sent
        self._observe = observe
        self._clock = clock
        self._tick = tick
        self._headers = dict(headers)
        self._rng = rng or random.Random()
        self._convert = Converter(config, drop)
        self._pending: dict[str, list[bytes]] = {p: [] for p in PATHS.values()}
        self._pending_bytes: dict[str, int] = dict.fromkeys(PATHS.values(), 0)
        self._seq = 0
        self._waiters: list[tuple[int, FlushMarker, int]] = []
        self._failures: list[int] = []
        self._attempts = 0
        self._retry_at = 0.0
        self._next_seal = 0.0
        # The request on its way (batch, [answer or exception] once done): conversion goes on
        # while the collector works on it, so their times overlap instead of adding up.
        self._inflight: tuple[Batch, list[Any], threading.Thread] | None = None

    def run(self) -> None:
        """The thread body: loop until ``stop`` is set, then one last bounded pass."""
        try:
            self._outbox = self._make_outbox()
        except Exception as exc:
            warn_limited("outbox", "spool unusable (%s); keeping batches in memory", exc)
            from ._outbox import MemoryOutbox

            self._outbox = MemoryOutbox(self._config.max_queue_size)
        self._next_seal = self._clock() + self._config.flush_interval
        while not self._stop.is_set():
            try:
                self._cycle(final=False)
            except Exception as exc:  # a bug here must not kill the thread
                warn_limited("sender", "sender cycle failed: %s", error_text(exc))
            self._wake.wait(self._timeout())
            self._wake.clear()
        try:
            self._cycle(final=True)
        except Exception as exc:
            warn_limited("sender", "final send failed: %s", error_text(exc))
        close = getattr(self._transport, "close", None)
        if callable(close):
            with contextlib.suppress(Exception):
                close()

    def _timeout(self) -> float:
        if self._queue and not self._outbox.full():
            return 0.0  # more to convert: go round again (sending is interleaved with it)
        now = self._clock()
        deadline = self._next_seal
        if self._inflight is None and self._outbox.head() is not None:
            deadline = min(deadline, max(self._retry_at, now))
        return min(max(deadline - now, 0.001), self._config.flush_interval)

    def _cycle(self, final: bool) -> None:
        self._drain(final)
        now = self._clock()
        if final or now >= self._next_seal:
            self._seal_all()
            self._next_seal = now + self._config.flush_interval
        if final:
            self._send_final()
        else:
            self._send_due(now)
        self._release()
        if self._tick is not None:
            self._tick()

    def _drain(self, final: bool) -> None:
        # At most one batch worth per cycle, so that under sustained load sealed batches are
        # sent while conversion goes on (rather than piling up until the outbox is full).
        queue = self._queue
        budget = self._config.batch_size
        while queue and (final or (budget > 0 and not self._outbox.full())):
            budget -= 1
            entry = queue.popleft()
            try:
                if isinstance(entry, RawCall):
                    if self._observe is not None:
                        self._observe(entry)
                    self._add("/v1/predictions", self._convert.call(entry))
                elif isinstance(entry, RawOutcome):
                    record = self._convert.outcome(entry)
                    self._add("/v1/outcomes", [] if record is None else [record])
                elif isinstance(entry, FlushMarker):
                    self._seal_all()
                    self._waiters.append((self._seq, entry, len(self._failures)))
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
                or self._pending_bytes[path] >= _MAX_BATCH_BYTES
            ):
                self._seal(path)
                pending = self._pending[path]

    def _seal_all(self) -> None:
        for path in PATHS.values():
            if self._pending[path]:
                self._seal(path)

    def _seal(self, path: str) -> None:
        records = self._pending[path]
        self._pending[path] = []
        self._pending_bytes[path] = 0
        body = b'{"records":[' + b",".join(records) + b"]}"
        self._seq += 1
        self._outbox.push(Batch(self._seq, path, _gzip(body), len(records)))

    def _send_due(self, now: float) -> None:
        while True:
            if self._inflight is not None:
                sent, answer, _ = self._inflight
                if not answer:
                    return  # the request's thread wakes the loop when the answer is in
                self._inflight = None
                if not self._handle(sent, answer[0], final=False):
                    return
                now = self._clock()
            batch = self._outbox.head()
            if batch is None or now < self._retry_at:
                return
            self._inflight = self._post(batch)

    def _post(self, batch: Batch) -> tuple[Batch, list[Any], threading.Thread]:
        """Start sending ``batch`` on a short-lived thread (the wait releases the GIL)."""
        answer: list[Any] = []

        def send() -> None:
            try:
                answer.append(self._transport.send(batch.path, batch.body, self._headers))
            except BaseException as exc:
                answer.append(exc)
            finally:
                self._wake.set()

        thread = threading.Thread(target=send, name="keelwatch-post", daemon=True)
        thread.start()
        return batch, answer, thread

    def _send_final(self) -> None:
        deadline = self._clock() + self._config.shutdown_timeout
        if self._inflight is not None:
            sent, answer, thread = self._inflight
            thread.join(max(0.0, deadline - self._clock()))
            if answer:
                self._inflight = None
                self._handle(sent, answer[0], final=True)
        while (
            self._inflight is None
            and (batch := self._outbox.head()) is not None
            and self._clock() < deadline
        ):
            if not self._attempt(batch, final=True):
                break
        if self._outbox.head() is not None and not self._config.spool_dir:
            while (batch := self._outbox.head()) is not None:
                self._outbox.pop()
                self._drop("shutdown", batch.n_records)

    def _attempt(self, batch: Batch, final: bool) -> bool:
        """Send ``batch`` and wait; True when it left the outbox (acknowledged or refused)."""
        try:
            answer: SendResult | BaseException = self._transport.send(
                batch.path, batch.body, self._headers
            )
        except Exception as exc:
            answer = exc
        return self._handle(batch, answer, final)

    def _handle(self, batch: Batch, answer: SendResult | BaseException, final: bool) -> bool:
        """Act on the answer to ``batch``; True when it left the outbox."""
        if isinstance(answer, BaseException):
            warn_limited("send", "collector unreachable: %s", error_text(answer))
            return self._retry(batch, None, final)
        result = answer
        status = result.status
        if 200 <= status < 300:
            self._outbox.pop()
            self._attempts = 0
            rejected = _rejected(result)
            if rejected:
                warn_limited("rejected", "collector rejected %d records", rejected)
                self._drop("rejected", rejected)
            self._sent(batch.n_records - rejected)
            return True
        if 400 <= status < 500 and status not in (408, 429):
            warn_limited("4xx", "collector answered %d to %s; batch dropped", status, batch.path)
            self._outbox.pop()
            self._attempts = 0
            self._drop("rejected", batch.n_records)
            self._failures.append(batch.seq)
            return True
        warn_limited("5xx", "collector answered %d to %s; will retry", status, batch.path)
        return self._retry(batch, result, final)

    def _retry(self, batch: Batch, result: SendResult | None, final: bool) -> bool:
        self._attempts += 1
        if final:
            return False
        if not self._config.spool_dir and self._attempts > self._config.max_retries:
            self._outbox.pop()
            self._attempts = 0
            self._drop("send_failed", batch.n_records)
            self._failures.append(batch.seq)
            return True
        delay: float | None = None
        if result is not None and result.status in (429, 503) and result.retry_after is not None:
            delay = min(result.retry_after, _MAX_RETRY_AFTER)
        if delay is None:
            base = min(self._config.max_backoff, 0.5 * 2 ** min(self._attempts - 1, 30))
            delay = base * (0.5 + 0.5 * self._rng.random())
        self._retry_at = self._clock() + delay
        return False

    def _release(self) -> None:
        if not self._waiters:
            return
        head = self._outbox.head()
        keep = []
        for target, marker, failures_before in self._waiters:
            if head is None or head.seq > target:
                failed = any(s <= target for s in self._failures[failures_before:])
                marker.result.append(not failed)
                marker.done.set()
            else:
                keep.append((target, marker, failures_before))
        self._waiters = keep
        if not keep:
            self._failures.clear()

    def abandon(self) -> None:
        """Wake every flush waiter with ``False`` (the sender is going away)."""
        for _, marker, _ in self._waiters:
            marker.result.append(False)
            marker.done.set()
        self._waiters = []


def _rejected(result: SendResult) -> int:
    try:
        answer = json.loads(result.body)
        return len(answer.get("rejected") or ()) if isinstance(answer, dict) else 0
    except (ValueError, TypeError, AttributeError):
        return 0
