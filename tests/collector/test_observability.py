"""OpenTelemetry ids in records, and Prometheus metrics of the SDK itself."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry

from keelwatch.collector import InMemoryTransport, SendResult


def test_current_span_ids_are_recorded(make_client):
    transport = InMemoryTransport()
    client = make_client(transport=transport)
    tracer = TracerProvider().get_tracer("test")
    f = client.monitor(model="m")(lambda x: x)
    with tracer.start_as_current_span("request") as span:
        f(1)
        ctx = span.get_span_context()
    f(2)  # no active span: empty ids
    assert client.flush(5)
    traced, untraced = transport.records()
    assert traced["trace_id"] == format(ctx.trace_id, "032x")
    assert traced["span_id"] == format(ctx.span_id, "016x")
    assert untraced["trace_id"] == "" and untraced["span_id"] == ""


def test_prometheus_metrics_on_a_given_registry(make_client):
    registry = CollectorRegistry()
    transport = InMemoryTransport([SendResult(400)])
    client = make_client(transport=transport, metrics_registry=registry)

    @client.monitor(model="churn")
    def f(x):
        if x < 0:
            raise ValueError("negative")
        return x

    for i in range(4):
        f(i)
    with pytest.raises(ValueError):
        f(-1)
    assert client.flush(5) is False  # the collector refused the batch
    value = registry.get_sample_value
    assert value("keelwatch_sdk_predictions_total", {"model": "churn"}) == 5
    assert value("keelwatch_sdk_errors_total", {"model": "churn"}) == 1
    assert value("keelwatch_sdk_prediction_latency_seconds_count", {"model": "churn"}) == 5
    assert value("keelwatch_sdk_dropped_total", {"reason": "rejected"}) == 5
    assert value("keelwatch_sdk_queue_depth") == 0


def test_latency_histogram_matches_prometheus_client():
    from types import SimpleNamespace

    from prometheus_client import Histogram

    from keelwatch.collector._metrics import for_registry

    registry, oracle_registry = CollectorRegistry(), CollectorRegistry()
    oracle = Histogram("oracle_seconds", "same values", registry=oracle_registry)
    metrics = for_registry(registry)
    assert metrics is not None
    spec = SimpleNamespace(model="m")
    # Bucket edges included: a latency equal to a bound counts in that bound's bucket (le).
    latencies = [0.0, 1e-9, 0.005, 0.0051, 0.01, 0.3, 1.0, 9.99, 10.0, 11.0]
    for latency in latencies:
        oracle.observe(latency)
        metrics.observe((SimpleNamespace(spec=spec, latency_s=latency, error=None),))
    metrics.observe((SimpleNamespace(spec=spec, latency_s=0.02, error=ValueError()),))
    oracle.observe(0.02)
    value, expected = registry.get_sample_value, oracle_registry.get_sample_value
    for bound in ("0.005", "0.01", "0.025", "0.25", "1.0", "10.0", "+Inf"):
        labels = {"model": "m", "le": bound}
        ours = value("keelwatch_sdk_prediction_latency_seconds_bucket", labels)
        assert ours == expected("oracle_seconds_bucket", {"le": bound}), bound
    hist = "keelwatch_sdk_prediction_latency_seconds"
    assert value(f"{hist}_sum", {"model": "m"}) == pytest.approx(sum(latencies) + 0.02)
    assert value(f"{hist}_count", {"model": "m"}) == len(latencies) + 1
    assert value("keelwatch_sdk_predictions_total", {"model": "m"}) == len(latencies) + 1
    assert value("keelwatch_sdk_errors_total", {"model": "m"}) == 1


def test_a_block_of_calls_counts_as_the_same_calls_one_by_one():
    from types import SimpleNamespace

    from keelwatch.collector._metrics import for_registry

    one, block = CollectorRegistry(), CollectorRegistry()
    by_one, by_block = for_registry(one), for_registry(block)
    assert by_one is not None and by_block is not None
    a, b = SimpleNamespace(model="a"), SimpleNamespace(model="b")
    calls = [
        SimpleNamespace(spec=a if i % 3 else b, latency_s=i * 0.0037, error=None if i % 4 else 1)
        for i in range(200)
    ]
    for raw in calls:
        by_one.observe((raw,))
    by_block.observe(calls[:120])  # two models in one block
    by_block.observe([c for c in calls[120:] if c.spec is a])  # one model
    by_block.observe([c for c in calls[120:] if c.spec is b])
    for family in one.collect():
        for sample in family.samples:
            ours = block.get_sample_value(sample.name, sample.labels)
            if sample.name.endswith("_sum"):
                assert ours == pytest.approx(sample.value, rel=1e-12), sample
            else:
                assert ours == sample.value, sample
