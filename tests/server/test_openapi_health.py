"""The OpenAPI description documents the ingest bodies; health and readiness."""

from __future__ import annotations

from typing import Any

from keelwatch.store import EmbeddedStore


def test_openapi_describes_ingest_bodies(client: Any) -> None:
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/v1/predictions"]["post"]["requestBody"]["content"]
    assert set(body) == {"application/json", "application/vnd.apache.arrow.stream"}
    record = body["application/json"]["schema"]["properties"]["records"]["items"]
    assert record["required"] == ["prediction_id", "model", "ts"]
    assert "features" in record["properties"]
    traces = spec["paths"]["/v1/traces"]["post"]["requestBody"]["content"]
    assert "application/x-protobuf" in traces
    assert "413" in spec["paths"]["/v1/predictions"]["post"]["responses"]
    assert "/" not in spec["paths"]


def test_health_and_readiness(client: Any, store: EmbeddedStore) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready", "spooled_bytes": 0}
    store.close()
    answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["status"] == "store unavailable"


def test_retention_applied_at_start_up(app_client: Any, store: EmbeddedStore) -> None:
    from keelwatch.store import Retention

    with app_client(retention=Retention(raw_days=3)):
        pass
    query = store.query("SELECT create_table_query AS q FROM system.tables WHERE name = 'spans'")
    assert "toIntervalDay(3)" in query.column("q")[0].as_py()
