"""Prometheus metrics of the SDK, on the model service's own registry.

Optional: used only when ``prometheus_client`` is importable. Counters are updated on the sender
thread from the raw entries, so the decorated call pays nothing for them. One set of metric
objects per registry (several clients share it).
"""

from __future__ import annotations

import threading
from typing import Any

from ._spec import RawCall

_lock = threading.Lock()
_by_registry: dict[int, tuple[Any, SdkMetrics]] = {}


class SdkMetrics:
    """``keelwatch_sdk_*`` metrics registered on one ``CollectorRegistry``."""

    def __init__(self, registry: Any) -> None:
        import prometheus_client as prom

        self.predictions = prom.Counter(
            "keelwatch_sdk_predictions",
            "Calls of @monitor functions seen by the sender",
            ["model"],
            registry=registry,
        )
        self.latency = prom.Histogram(
            "keelwatch_sdk_prediction_latency_seconds",
            "Latency of @monitor functions",
            ["model"],
            registry=registry,
        )
        self.errors = prom.Counter(
            "keelwatch_sdk_errors",
            "Calls of @monitor functions that raised",
            ["model"],
            registry=registry,
        )
        self.dropped = prom.Counter(
            "keelwatch_sdk_dropped",
            "Records not delivered, by reason",
            ["reason"],
            registry=registry,
        )
        self.queue_depth = prom.Gauge(
            "keelwatch_sdk_queue_depth", "Calls waiting for the sender", registry=registry
        )

    def observe(self, raw: RawCall) -> None:
        """Count one call (sender thread)."""
        model = raw.spec.model
        self.predictions.labels(model).inc()
        self.latency.labels(model).observe(raw.latency_s)
        if raw.error is not None:
            self.errors.labels(model).inc()


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
