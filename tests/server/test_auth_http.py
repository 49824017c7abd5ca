"""Authentication over HTTP: 401 vs 403, roles per route, project from the key, dev mode."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import clickhouse_connect
import orjson
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from keelwatch.collector.server._keys import KeyRing
from keelwatch.store import EmbeddedStore


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def predictions(model: str = "m", project: str | None = None) -> bytes:
    record: dict[str, Any] = {"prediction_id": "a", "model": model, "ts": time.time()}
    if project is not None:
        record["project"] = project
    return orjson.dumps({"records": [record]})


@pytest.fixture
def keys(store: EmbeddedStore) -> dict[str, str]:
    ring = KeyRing(store)
    return {role: ring.create("shop", role).key for role in ("ingest", "read", "admin")}


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("POST", "/v1/predictions", {"ingest", "admin"}),
        ("POST", "/v1/outcomes", {"ingest", "admin"}),
        ("GET", "/v1/baselines", {"read", "admin"}),
        ("GET", "/metrics", {"read", "admin"}),
        ("GET", "/?query=SELECT%201", {"read", "admin"}),
        ("POST", "/v1/detect", {"admin"}),
        ("POST", "/v1/baselines?model=m", {"admin"}),
        ("GET", "/v1/keys", {"admin"}),
    ],
)
def test_roles_per_route(
    app_client: Callable[..., Any], keys: dict[str, str], method: str, path: str, allowed: set[str]
) -> None:
    with app_client() as client:
        for role, key in keys.items():
            status = client.request(method, path, content=b"{}", headers=bearer(key)).status_code
            assert (status != 403) == (role in allowed), (role, status)
            assert status != 401


@pytest.mark.parametrize(
    "headers",
    [{}, bearer("kw_000000000000_nope"), bearer("wrong"), {"authorization": "Basic !!"}],
)
def test_missing_or_unknown_key_is_401(
    app_client: Callable[..., Any], keys: dict[str, str], headers: dict[str, str]
) -> None:
    with app_client() as client:
        answer = client.post("/v1/predictions", content=predictions(), headers=headers)
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"] == "Bearer"
        assert client.get("/healthz").status_code == 200  # open routes stay open


def test_project_comes_from_the_key(
    app_client: Callable[..., Any], keys: dict[str, str], store: EmbeddedStore
) -> None:
    with app_client(project="default") as client:
        answer = client.post(
            "/v1/predictions", content=predictions(), headers=bearer(keys["ingest"])
        )
        assert answer.json()["accepted"] == 1
        sneaky = client.post(
            "/v1/predictions", content=predictions(project="other"), headers=bearer(keys["ingest"])
        )
        assert sneaky.json()["rejected"][0]["field"] == "project"
    assert store.query("SELECT project FROM predictions").column("project").to_pylist() == ["shop"]


def test_revoked_key_is_refused_within_the_ttl(
    app_client: Callable[..., Any], keys: dict[str, str]
) -> None:
    with app_client(key_cache_ttl_s=0.0) as client:
        created = client.post(
            "/v1/keys", content=b'{"role": "ingest", "name": "ci"}', headers=bearer(keys["admin"])
        ).json()
        assert created["project"] == "shop"
        assert (
            client.post(
                "/v1/predictions", content=predictions(), headers=bearer(created["key"])
            ).status_code
            == 200
        )
        listed = client.get("/v1/keys", headers=bearer(keys["admin"])).json()
        assert created["key_id"] in {k["key_id"] for k in listed}
        assert all("key" not in k and "key_hash" not in k for k in listed)
        revoked = client.delete(f"/v1/keys/{created['key_id']}", headers=bearer(keys["admin"]))
        assert revoked.json()["revoked_at"] is not None
        assert (
            client.post(
                "/v1/predictions", content=predictions(), headers=bearer(created["key"])
            ).status_code
            == 401
        )


def test_project_admin_cannot_mint_keys_for_another_project(
    app_client: Callable[..., Any], keys: dict[str, str]
) -> None:
    with app_client() as client:
        answer = client.post(
            "/v1/keys",
            content=b'{"role": "admin", "project": "bank"}',
            headers=bearer(keys["admin"]),
        )
        assert answer.status_code == 403


def test_bootstrap_key_is_an_admin_of_the_default_project(app_client: Callable[..., Any]) -> None:
    with app_client(api_key="boot-strap-secret", project="main") as client:
        assert client.post("/v1/predictions", content=predictions()).status_code == 401
        created = client.post(
            "/v1/keys",
            content=b'{"role": "read", "project": "bank"}',
            headers=bearer("boot-strap-secret"),
        )
        assert created.json()["project"] == "bank"


def test_dev_mode_serves_loopback_only(app_client: Callable[..., Any]) -> None:
    for peer, status in (("127.0.0.1", 200), ("::1", 200), ("10.1.2.3", 403)):
        with app_client(peer=peer) as client:
            answer = client.post("/v1/predictions", content=predictions())
            assert answer.status_code == status, peer


def test_loopback_needs_a_key_once_keys_exist(
    app_client: Callable[..., Any], keys: dict[str, str]
) -> None:
    with app_client(peer="127.0.0.1") as client:
        assert client.post("/v1/predictions", content=predictions()).status_code == 401


def test_read_key_reads_through_clickhouse_connect(
    served: Callable[..., Any], keys: dict[str, str]
) -> None:
    with served() as srv:
        reader = clickhouse_connect.get_client(
            host="127.0.0.1", port=srv.port, password=keys["read"]
        )
        try:
            assert reader.query("SELECT {x:Int32} + 1", parameters={"x": 1}).result_rows == [(2,)]
        finally:
            reader.close()
        with pytest.raises(DatabaseError):
            clickhouse_connect.get_client(host="127.0.0.1", port=srv.port, password=keys["ingest"])
