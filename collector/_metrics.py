"""Prometheus metrics of the SDK, on the model service's own registry.

Optional: used only when ``prometheus_client`` is importable. Per-call figures (predictions,
errors, the latency histogram) are counted on the sender thread from the raw entries, so the
decorated call pays nothing for them, into plain per-model tallies that a registry collector
reads at scrape time: a labelled prometheus-client ``Histogram.observe`` plus ``Counter.inc``
costs about 5 us a call, which at 50,000 calls a second was most of the sender's work; a tally
costs a few hundred nanoseconds. One set of metrics per registry (several clients share it).
"""

from __future__ import annotations

import bisect
import math
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from functools import partial
from typing import Any

from ._spec import RawCall

_lock = threading.Lock()
_by_registry: dict[int, tuple[Any, SdkMetrics]] = {}


class _Tally:
    """One model's calls, errors, latency sum and per-bucket (not cumulative) counts."""

    __slots__ = ("buckets", "calls", "errors", "latency_sum")

    def __init__(self, n_buckets: int) -> None:
        self.calls = 0
        self.errors = 0
        self.latency_sum = 0.0
        self.buckets = [0] * n_buckets


class _CallCollector:
    """``keelwatch_sdk_predictions``, ``_errors`` and ``_prediction_latency_seconds``."""

    def __init__(self, bounds: tuple[float, ...]) -> None:
        #: Upper bounds of the latency buckets (seconds), +Inf last.
        self._bounds = bounds
        self._tallies: dict[str, _Tally] = {}
        self._lock = threading.Lock()  # several clients' sender threads may share a registry

    def observe(self, calls: Sequence[RawCall]) -> None:
        """Count ``calls`` (the sender hands them over one by one or a block at a time)."""
        model = calls[0].spec.model
        if len(calls) > 1 and any(c.spec.model != model for c in calls):
            for raw in calls:
                self.observe((raw,))
            return
        latencies = [c.latency_s for c in calls]
        errors = len(calls) - [c.error for c in calls].count(None)
        slots = Counter(map(partial(bisect.bisect_left, self._bounds), latencies))  # le: <=
        with self._lock:
            tally = self._tallies.get(model)
            if tally is None:
                tally = self._tallies[model] = _Tally(len(self._bounds))
            tally.calls += len(calls)
            tally.latency_sum += math.fsum(latencies)
            for slot, count in slots.items():
                tally.buckets[slot] += count
            tally.errors += errors

    def describe(self) -> list[Any]:
        return list(self._families((), self._bounds))

    def collect(self) -> Iterator[Any]:
        with self._lock:
            snapshot = [
                (m, t.calls, t.errors, t.latency_sum, list(t.buckets))
                for m, t in self._tallies.items()
            ]
        return self._families(snapshot, self._bounds)

    @staticmethod
    def _families(snapshot: Any, bounds: tuple[float, ...]) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

        calls = CounterMetricFamily(
            "keelwatch_sdk_predictions", "Calls of @monitor functions seen by the sender",
            labels=["model"],
        )  # fmt: skip
        errors = CounterMetricFamily(
            "keelwatch_sdk_errors", "Calls of @monitor functions that raised", labels=["model"]
        )
        latency = HistogramMetricFamily(
            "keelwatch_sdk_prediction_latency_seconds", "Latency of @monitor functions",
            labels=["model"],
        )  # fmt: skip
        for model, n, n_errors, total, buckets in snapshot:
            calls.add_metric([model], n)
            errors.add_metric([model], n_errors)
            cumulative, running = [], 0
            for bound, count in zip(bounds, buckets, strict=True):
                running += count
                cumulative.append((_le(bound), running))
            latency.add_metric([model], cumulative, total)
        yield calls
        yield errors
        yield latency


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)


class SdkMetrics:
    """``keelwatch_sdk_*`` metrics registered on one ``CollectorRegistry``."""

    def __init__(self, registry: Any) -> None:
        import prometheus_client as prom

        calls = _CallCollector(tuple(prom.Histogram.DEFAULT_BUCKETS))
        registry.register(calls)
        #: Count calls (sender thread): a sequence of ``RawCall``.
        self.observe = calls.observe
        self.dropped = prom.Counter(
            "keelwatch_sdk_dropped",
            "Records not delivered, by reason",
            ["reason"],
            registry=registry,
        )
        self.queue_depth = prom.Gauge(
            "keelwatch_sdk_queue_depth", "Calls waiting for the sender", registry=registry
        )


def for_registry(registry: Any) -> SdkMetrics | None:
    """The metrics on ``registry`` (``None``: the default registry), or ``None`` without
    prometheus_client."""
    try:
        import prometheus_client
    except ImportError:
        return None
    if registry is None:
        registry = prometheus_client.REGISTRY
    with _lock:
        entry = _by_registry.get(id(registry))
        if entry is None:
            entry = _by_registry[id(registry)] = (registry, SdkMetrics(registry))
        return entry[1]
