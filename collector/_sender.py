"""The background sender: one daemon thread per client (and per process after a fork).

Each cycle it drains the raw queue into batches in the outbox (memory or spool; ``_batcher``:
Arrow columns or JSON, sealed by size, at flush markers or by interval), and sends the oldest
batches not yet on their way, up to ``max_in_flight`` requests at once, each on a short-lived thread
(the wait for the collector releases the GIL, so conversion, the network and the collector's
work overlap, and concurrent requests let the collector merge their inserts). Answers may come
back in any order; a batch leaves the outbox only when its own answer says so. 2xx
acknowledges; 429/503 wait for Retry-After (else back off); other 4xx drop the batch for good;
5xx and transport errors back off exponentially with jitter, and without a spool give up after
``max_retries`` attempts of that batch. After a failure one request at a time probes the
collector until one succeeds. Nothing here raises: each failure is counted by reason and logged,
rate-limited.
"""

from __future__ import annotations

import collections
import contextlib
import json
import random
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ._arrow import ARROW_STREAM
from ._batcher import Batcher
from ._config import Config
from ._log import warn_limited
from ._outbox import Batch, Outbox
from ._records import error_text
from ._spec import FlushMarker, RawCall
from ._transport import SendResult, Transport

_MAX_RETRY_AFTER = 300.0


class _Request(threading.Thread):
    """One batch on its way: the answer (or the exception) once the transport returned."""

    def __init__(self, batch: Batch, send: Callable[[Batch], SendResult], done: Any) -> None:
        super().__init__(name="keelwatch-post", daemon=True)
        self.batch = batch
        self.answer: list[SendResult | BaseException] = []
        self._send = send
        self._done = done

    def run(self) -> None:
        try:
            self.answer.append(self._send(self.batch))
        except BaseException as exc:
            self.answer.append(exc)
        finally:
            self._done.set()


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
        observe: Callable[[Sequence[RawCall]], None] | None,
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
        self._arrow_headers = {k: v for k, v in headers.items() if k != "Content-Encoding"}
        self._arrow_headers["Content-Type"] = ARROW_STREAM
        self._rng = rng or random.Random()
        self._batcher = Batcher(config, queue, drop, observe, self._flushed)
        self._waiters: list[tuple[int, FlushMarker, int]] = []
        self._failures: list[int] = []
        self._tries: dict[int, int] = {}  # failed attempts per batch (by sequence number)
        self._streak = 0  # failures since the last success: the back-off exponent
        self._limit = config.max_in_flight  # 1 while probing a failing collector
        self._retry_at = 0.0
        self._next_seal = 0.0
        self._inflight: dict[int, _Request] = {}

    def run(self) -> None:
        """The thread body: loop until ``stop`` is set, then one last bounded pass."""
        try:
            self._outbox = self._make_outbox()
        except Exception as exc:
            warn_limited("outbox", "spool unusable (%s); keeping batches in memory", exc)
            from ._outbox import MemoryOutbox

            self._outbox = MemoryOutbox(self._config.max_queue_size)
        self._batcher.outbox = self._outbox
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
        if len(self._inflight) < self._limit and self._waiting() is not None:
            deadline = min(deadline, max(self._retry_at, now))
        return min(max(deadline - now, 0.001), self._config.flush_interval)

    def _cycle(self, final: bool) -> None:
        self._batcher.drain(final)
        now = self._clock()
        if final or now >= self._next_seal:
            self._batcher.seal_all()
            self._next_seal = now + self._config.flush_interval
        if final:
            self._send_final()
        else:
            self._send_due(now)
        self._release()
        if self._tick is not None:
            self._tick()

    def _flushed(self, marker: FlushMarker) -> None:
        # Everything queued before the marker is sealed: it waits for the last batch so far.
        self._waiters.append((self._batcher.seq, marker, len(self._failures)))

    def _waiting(self) -> Batch | None:
        """The oldest batch not on its way."""
        inflight = self._inflight
        for batch in self._outbox.batches():
            if batch.seq not in inflight:
                return batch
        return None

    def _collect(self, final: bool) -> bool:
        """Act on the answers that came back; False when one of them failed."""
        ok = True
        for seq, request in list(self._inflight.items()):
            if request.answer:
                del self._inflight[seq]
                ok = self._handle(request.batch, request.answer[0], final) and ok
        return ok

    def _send_due(self, now: float) -> None:
        if not self._collect(final=False):
            now = self._clock()
        if now < self._retry_at:
            return
        while len(self._inflight) < self._limit:
            batch = self._waiting()
            if batch is None:
                return
            self._post(batch)

    def _post(self, batch: Batch) -> None:
        """Start sending ``batch`` on a short-lived thread (the wait releases the GIL)."""
        request = _Request(batch, self._send, self._wake)
        self._inflight[batch.seq] = request
        request.start()

    def _send(self, batch: Batch) -> SendResult:
        headers = self._arrow_headers if batch.arrow else self._headers
        return self._transport.send(batch.path, batch.body, headers)

    def _send_final(self) -> None:
        """Send what is left until ``shutdown_timeout``, stopping at the first failure."""
        deadline = self._clock() + self._config.shutdown_timeout
        failed = False
        while True:
            self._wake.clear()
            failed = not self._collect(final=True) or failed
            now = self._clock()
            if not failed and now < deadline:
                while len(self._inflight) < self._config.max_in_flight:
                    batch = self._waiting()
                    if batch is None:
                        break
                    self._post(batch)
            if not self._inflight or now >= deadline:
                break
            self._wake.wait(deadline - now)
        if self._outbox.head() is not None and not self._config.spool_dir:
            for batch in list(self._outbox.batches()):
                self._outbox.remove(batch)
                self._drop("shutdown", batch.n_records)

    def _handle(self, batch: Batch, answer: SendResult | BaseException, final: bool) -> bool:
        """Act on the answer to ``batch``; True when it was acknowledged or refused for good."""
        if isinstance(answer, BaseException):
            warn_limited("send", "collector unreachable: %s", error_text(answer))
            return self._retry(batch, None, final)
        result = answer
        status = result.status
        if 200 <= status < 300:
            self._outbox.remove(batch)
            self._tries.pop(batch.seq, None)
            self._streak = 0
            self._limit = self._config.max_in_flight
            rejected = _rejected(result)
            if rejected:
                warn_limited("rejected", "collector rejected %d records", rejected)
                self._drop("rejected", rejected)
            self._sent(batch.n_records - rejected)
            return True
        if 400 <= status < 500 and status not in (408, 429):
            warn_limited("4xx", "collector answered %d to %s; batch dropped", status, batch.path)
            if batch.arrow and status not in (401, 403) and not self._batcher.arrow_off:
                # A collector that cannot read Arrow (or refuses these columns).
                self._batcher.stop_arrow(f"collector answered {status} to an Arrow batch")
            self._give_up(batch, "rejected")
            return True
        warn_limited("5xx", "collector answered %d to %s; will retry", status, batch.path)
        return self._retry(batch, result, final)

    def _give_up(self, batch: Batch, reason: str) -> None:
        if self._outbox.remove(batch):
            self._drop(reason, batch.n_records)
        self._tries.pop(batch.seq, None)
        self._failures.append(batch.seq)

    def _retry(self, batch: Batch, result: SendResult | None, final: bool) -> bool:
        tries = self._tries[batch.seq] = self._tries.get(batch.seq, 0) + 1
        self._streak += 1
        self._limit = 1  # probe with one request until the collector answers again
        if final:
            return False
        if not self._config.spool_dir and tries > self._config.max_retries:
            self._give_up(batch, "send_failed")
            return False
        delay: float | None = None
        if result is not None and result.status in (429, 503) and result.retry_after is not None:
            delay = min(result.retry_after, _MAX_RETRY_AFTER)
        if delay is None:
            base = min(self._config.max_backoff, 0.5 * 2 ** min(self._streak - 1, 30))
            delay = base * (0.5 + 0.5 * self._rng.random())
        self._retry_at = max(self._retry_at, self._clock() + delay)
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
