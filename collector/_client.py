"""``Client``: one configured pipeline from ``@monitor`` calls to the collector.

The hot path (``_record``) checks the owner pid, appends a ``RawCall`` to a bounded deque and,
when a batch is ready, wakes the sender. Everything else runs on the sender thread. A forked child
gets a fresh queue and thread on its first call (``os.register_at_fork`` plus the pid check);
``atexit`` flushes every live client.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import dataclasses
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ._config import Config, MaskFunc, resolve
from ._ids import ids
from ._log import warn_limited
from ._otel import capture as _capture_trace
from ._outbox import MemoryOutbox, Outbox, SpoolOutbox
from ._sender import Sender
from ._spec import FlushMarker, MonitorSpec, RawCall, RawOutcome
from ._transport import HttpTransport, Transport

_VERSION = "0.1.0"
_new = tuple.__new__
_clients: weakref.WeakSet[Client] = weakref.WeakSet()
_NOT_STARTED = -1
_CLOSED = -2
# Forks seen by os.register_at_fork in this process. The hot path compares it with the client's
# copy (cheaper than os.getpid(), a system call); the pid is checked on the slow paths.
_forks = 0


@dataclasses.dataclass(frozen=True)
class Stats:
    """Counts since the client started: records acknowledged, dropped by reason, still queued."""

    sent: int
    dropped: Mapping[str, int]
    queued: int


class Client:
    """Ships the records of ``@monitor`` calls and ``log_outcome`` to a collector.

    Args:
        endpoint: collector base URL (``KEELWATCH_ENDPOINT``, default ``http://127.0.0.1:8787``).
        api_key: sent as ``Authorization: Bearer`` (``KEELWATCH_API_KEY``).
        transport: replaces the HTTP transport (e.g. ``InMemoryTransport`` in tests).
        batch_size: records per request (``KEELWATCH_BATCH_SIZE``, 4096).
        flush_interval: seconds before a partial batch is sent (``KEELWATCH_FLUSH_INTERVAL``, 1).
        max_queue_size: calls held in memory; more are dropped as ``queue_full``
            (``KEELWATCH_QUEUE_SIZE``, 50000).
        timeout: HTTP timeout in seconds (``KEELWATCH_SEND_TIMEOUT``, 10).
        max_retries: attempts after the first before a batch is dropped (no spool), 5.
        max_backoff: longest back-off between attempts, seconds (30).
        spool_dir: directory for at-least-once delivery across restarts (``KEELWATCH_SPOOL_DIR``).
        max_spool_bytes: spool size at which draining pauses (256 MiB).
        sample_rate: fraction of predictions shipped, by id hash (``KEELWATCH_SAMPLE_RATE``, 1).
        disabled: ``@monitor`` only calls the function (``KEELWATCH_DISABLED``).
        max_record_bytes: per-record cap after masking; long strings are cut, then it is dropped.
        allow, deny, mask: masking for every record (see ``keelwatch.collector._mask``).
        default_model: model of ``log_outcome`` calls that name none.
        shutdown_timeout: seconds ``shutdown`` (and exit) may spend sending what is left (5).
        headers: extra HTTP headers.
        max_in_flight: requests to the collector at once (``KEELWATCH_MAX_IN_FLIGHT``, 2); the
            transport's ``send`` is called from that many threads.
        wire_format: ``"auto"`` (Arrow IPC once the service has imported pyarrow, else gzip
            JSON), ``"arrow"`` (imports pyarrow) or ``"json"``.
        metrics_registry: a prometheus ``CollectorRegistry``; ``None`` = the default one when
            prometheus_client is installed; ``False`` = no metrics.
        clock, pid: injected monotonic clock and ``os.getpid`` (tests).

    Raises:
        ConfigError: (a ``ValueError``) for any invalid argument.
    """

    def __init__(
        self,
        endpoint: str | None = None,
        api_key: str | None = None,
        *,
        transport: Transport | None = None,
        batch_size: int | None = None,
        flush_interval: float | None = None,
        max_queue_size: int | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        max_backoff: float | None = None,
        spool_dir: str | os.PathLike[str] | None = None,
        max_spool_bytes: int | None = None,
        sample_rate: float | None = None,
        disabled: bool | None = None,
        max_record_bytes: int | None = None,
        allow: Iterable[str] | None = None,
        deny: Iterable[str] | None = None,
        mask: MaskFunc | None = None,
        default_model: str | None = None,
        shutdown_timeout: float | None = None,
        headers: Mapping[str, str] | None = None,
        max_in_flight: int | None = None,
        wire_format: str | None = None,
        metrics_registry: Any = None,
        clock: Callable[[], float] = time.monotonic,
        pid: Callable[[], int] = os.getpid,
    ) -> None:
        self.config: Config = resolve(
            endpoint=endpoint, api_key=api_key, batch_size=batch_size,
            flush_interval=flush_interval, max_queue_size=max_queue_size, timeout=timeout,
            max_retries=max_retries, max_backoff=max_backoff, spool_dir=spool_dir,
            max_spool_bytes=max_spool_bytes, sample_rate=sample_rate, disabled=disabled,
            max_record_bytes=max_record_bytes, allow=allow, deny=deny, mask=mask,
            default_model=default_model, shutdown_timeout=shutdown_timeout, headers=headers,
            max_in_flight=max_in_flight, wire_format=wire_format,
        )  # fmt: skip
        if transport is not None and not callable(getattr(transport, "send", None)):
            raise ValueError(f"transport={transport!r}: must have a send(path, body, headers)")
        self.transport: Transport = transport or HttpTransport(
            self.config.endpoint, self.config.timeout
        )
        self.disabled = self.config.disabled
        self._metrics_registry = metrics_registry
        self._clock = clock
        self._getpid = pid
        self._max_queue = self.config.max_queue_size
        self._wake_at = max(1, min(self.config.batch_size, self._max_queue // 2))
        self._lock = threading.Lock()
        self._owner = _NOT_STARTED
        self._generation = _NOT_STARTED
        self._reset_state()
        _clients.add(self)
        if self.config.spool_dir and not self.disabled:
            self._start()  # replay what an earlier process left, even if no call comes

    def _reset_state(self) -> None:
        self._queue: collections.deque[Any] = collections.deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sender: Sender | None = None
        self._count_lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._sent = 0
        self._full_drops = 0
        self._full_synced = 0

    # -- hot path -----------------------------------------------------------------------------

    def _record(
        self,
        spec: MonitorSpec,
        seq: int,
        ts: float,
        latency_s: float,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        result: Any,
        error: BaseException | None,
        streamed: bool = False,
    ) -> None:
        try:
            if self._generation != _forks and not self._start():
                return
            queue = self._queue
            if len(queue) >= self._max_queue:
                self._queue_full()
                return
            queue.append(
                _new(RawCall, (spec, seq, ts, latency_s, args, kwargs, result, error,
                               _capture_trace(), streamed))
            )  # fmt: skip
            if len(queue) >= self._wake_at and not self._wake.is_set():
                self._wake.set()
        except Exception as exc:  # never into the caller
            warn_limited("record", "keelwatch could not record a call: %r", exc)

    def log_outcome(
        self,
        prediction_id: str,
        label: Any = None,
        value: Any = None,
        *,
        model: str | None = None,
        ts: float | None = None,
    ) -> None:
        """Queue a delayed label / business outcome for ``prediction_id`` (POST /v1/outcomes)."""
        try:
            if not isinstance(prediction_id, str) or not 0 < len(prediction_id) <= 128:
                warn_limited("outcome-id", "log_outcome: bad prediction_id %r", prediction_id)
                self._count("invalid", 1)
                return
            if self.disabled or (self._owner != self._getpid() and not self._start()):
                return
            if len(self._queue) >= self._max_queue:
                self._queue_full()
                return
            when = time.time() if ts is None else float(ts)
            self._queue.append(RawOutcome(prediction_id, model, when, label, value))
        except Exception as exc:
            warn_limited("record", "keelwatch could not record an outcome: %r", exc)

    def _queue_full(self) -> None:
        with self._count_lock:
            self._full_drops += 1
        # A full queue is also what a fork that bypassed os.register_at_fork looks like (no
        # sender in this process): the pid check here restarts the sender in that case.
        if self._owner != self._getpid() and self._owner != _CLOSED:
            self._start()

    # -- life cycle ---------------------------------------------------------------------------

    def _start(self) -> bool:
        """Start (or, in a forked child, restart) the sender; False once shut down."""
        with self._lock:
            pid = self._getpid()
            if self._owner == _CLOSED:
                self._count("shutdown", 1)
                return False
            if self._owner == pid:
                self._generation = _forks
                return True
            if self._owner != _NOT_STARTED:  # a forked child: the parent's queue is the parent's
                self._stop.set()  # (no such thread here after a real fork; harmless)
                self._wake.set()
                self._reset_state()
            metrics = None
            if self._metrics_registry is not False:
                from ._metrics import for_registry

                try:
                    metrics = for_registry(self._metrics_registry)
                except Exception as exc:
                    warn_limited("metrics", "prometheus metrics disabled: %r", exc)
            self._metrics = metrics
            self._sender = Sender(
                self.config, self.transport, self._queue, self._wake, self._stop,
                outbox=lambda: self._make_outbox(pid), drop=self._count, sent=self._add_sent,
                observe=metrics.observe if metrics is not None else None, clock=self._clock,
                headers=self._headers(), tick=self._sync_metrics,
            )  # fmt: skip
            self._thread = threading.Thread(
                target=self._sender.run, name="keelwatch-sender", daemon=True
            )
            self._thread.start()
            self._owner = pid
            self._generation = _forks
            return True

    def _make_outbox(self, pid: int) -> Outbox:
        if self.config.spool_dir:
            return SpoolOutbox(self.config.spool_dir, self.config.max_spool_bytes, pid)
        return MemoryOutbox(self.config.max_queue_size)

    def _headers(self) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
            "User-Agent": f"keelwatch-sdk/{_VERSION}",
        }
        if self.config.api_key:
            headers["Authorization"] = f"Bearer {self.config.api_key}"
        headers.update(self.config.headers)
        return headers

    def _after_fork(self) -> None:
        # The parent's thread does not exist here and its locks may be held: start over.
        self._lock = threading.Lock()
        if self._owner != _CLOSED:
            self._owner, self._thread = _NOT_STARTED, None
            self._reset_state()

    def flush(self, timeout: float | None = 5.0) -> bool:
        """Send everything queued so far; True when it was all acknowledged within ``timeout``."""
        try:
            if self._owner not in (self._getpid(), _NOT_STARTED, _CLOSED):
                self._start()  # forked without the os.register_at_fork hooks
            started = self._owner == self._getpid() and self._thread is not None
            # With a spool, a flush also replays what an earlier process left on disk.
            if not started and not (
                self.config.spool_dir and self._owner != _CLOSED and self._start()
            ):
                return not self._queue
            marker = FlushMarker(threading.Event(), [])
            self._queue.append(marker)
            self._wake.set()
            if not marker.done.wait(timeout):
                return False
            return bool(marker.result and marker.result[0])
        except Exception as exc:
            warn_limited("flush", "keelwatch flush failed: %r", exc)
            return False

    def shutdown(self, timeout: float | None = None) -> None:
        """Send what is left (at most ``shutdown_timeout`` seconds), then stop the sender."""
        with self._lock:
            running = self._owner == self._getpid() and self._thread is not None
            self._owner = self._generation = _CLOSED
        if not running or self._thread is None:
            return
        self._stop.set()
        self._wake.set()
        limit = self.config.shutdown_timeout + self.config.timeout if timeout is None else timeout
        self._thread.join(limit)
        if self._sender is not None and not self._thread.is_alive():
            self._sender.abandon()

    # -- counting -----------------------------------------------------------------------------

    def _count(self, reason: str, n: int) -> None:
        with self._count_lock:
            self._counts[reason] = self._counts.get(reason, 0) + n
        metrics = getattr(self, "_metrics", None)
        if metrics is not None and n:
            metrics.dropped.labels(reason).inc(n)

    def _add_sent(self, n: int) -> None:
        with self._count_lock:
            self._sent += n

    def _sync_metrics(self) -> None:
        metrics = getattr(self, "_metrics", None)
        with self._count_lock:
            new = self._full_drops - self._full_synced
            self._full_synced = self._full_drops
        if metrics is not None:
            if new:
                metrics.dropped.labels("queue_full").inc(new)
            metrics.queue_depth.set(len(self._queue))

    def stats(self) -> Stats:
        """Records sent, dropped by reason (``queue_full``, ``send_failed``, ``rejected``,
        ``sampled``, ``masked``, ``too_large``, ``shutdown``, ...) and calls still queued."""
        with self._count_lock:
            dropped = dict(self._counts)
            if self._full_drops:
                dropped["queue_full"] = self._full_drops
            return Stats(self._sent, dropped, len(self._queue))

    # -- decorating ---------------------------------------------------------------------------

    def monitor(self, model: str, **options: Any) -> Callable[[Any], Any]:
        """``@client.monitor(model=...)``: like ``keelwatch.collector.monitor``, on this client."""
        from ._decorator import monitor

        return monitor(model, client=self, **options)


def _after_fork_in_child() -> None:
    global _forks
    _forks += 1
    ids.reseed()
    for client in list(_clients):
        client._after_fork()


def _at_exit() -> None:
    for client in list(_clients):
        with contextlib.suppress(Exception):
            client.shutdown()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_at_exit)
