"""The minimal path: @monitor on a function -> sender -> gzip JSON POST /v1/predictions."""

from __future__ import annotations

import gzip
import json

import pytest

from keelwatch.collector import Client, ConfigError, InMemoryTransport, configure, flush, monitor


def test_sync_call_is_shipped_as_gzip_json(make_client):
    transport = InMemoryTransport()
    client = make_client(transport=transport, api_key="k1")

    @client.monitor(model="churn", version="v1", slot="canary", tags={"tenant": "acme"})
    def predict(age, plan, income=None):
        return 0.25

    assert predict(41, "pro") == 0.25
    assert client.flush(5)
    [request] = transport.requests
    assert request.path == "/v1/predictions"
    assert request.headers["Content-Encoding"] == "gzip"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Authorization"] == "Bearer k1"
    [record] = json.loads(gzip.decompress(request.body))["records"]
    assert record["model"] == "churn" and record["version"] == "v1" and record["slot"] == "canary"
    assert record["features"] == {"age": 41, "plan": "pro", "income": None}
    assert record["output"]["value"] == 0.25
    assert record["tags"] == {"tenant": "acme"}
    assert record["error"] is None and record["latency_ms"] >= 0
    assert 1 <= len(record["prediction_id"]) <= 128


def test_global_configure_and_flush_reach_a_real_http_collector(collector):
    configure(endpoint=collector.url, metrics_registry=False, flush_interval=0.05)

    @monitor(model="m")
    def f(x):
        return x * 2

    assert [f(i) for i in range(10)] == [2 * i for i in range(10)]
    assert flush(5)
    assert len(collector.ids) == 10
    assert set(collector.ids.values()) == {1}


def test_bad_arguments_raise_value_error_at_once():
    with pytest.raises(ValueError, match="batch_size"):
        Client(batch_size=0)
    with pytest.raises(ConfigError, match="endpoint"):
        configure(endpoint="ftp://x")
    with pytest.raises(ValueError, match="sample_rate"):
        monitor(model="m", sample_rate=2)
    with pytest.raises(ValueError, match="model"):
        monitor(model="")
