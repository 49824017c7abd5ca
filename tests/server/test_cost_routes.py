"""Cost over HTTP and the CLI: /v1/prices, /v1/cost, ``keelwatch prices`` and ``keelwatch cost``."""

from __future__ import annotations

import argparse
import json
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

import pyarrow as pa
import pytest

from keelwatch._cli_cost import add_parsers, run
from keelwatch._client import ServerClient, ServerError
from keelwatch.collector.server import ServerConfig, create_app
from keelwatch.collector.server._keys import KeyRing
from keelwatch.store import EmbeddedStore, Retention

T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="keelwatch")
    add_parsers(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def insert(store: EmbeddedStore, rows: list[tuple[float, str, float, int, int]]) -> None:
    """``(seconds after T0, version, latency_ms, prompt tokens, completion tokens)`` rows."""
    store.insert(
        "predictions",
        pa.table(
            {
                "project": ["default"] * len(rows),
                "model": ["m"] * len(rows),
                "version": [r[1] for r in rows],
                "slot": ["stable"] * len(rows),
                "prediction_id": [uuid.uuid4().hex for _ in rows],
                "ts": pa.array(
                    [T0 + timedelta(seconds=r[0]) for r in rows], pa.timestamp("us", "UTC")
                ),
                "latency_ms": [r[2] for r in rows],
                "prompt_tokens": pa.array([r[3] for r in rows], pa.uint32()),
                "completion_tokens": pa.array([r[4] for r in rows], pa.uint32()),
            }
        ),
    )


def test_prices_and_cost_through_the_cli_and_a_live_server(
    store: EmbeddedStore, live_server: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    insert(
        store,
        [(10, "v1", 2000, 1000, 100), (20, "v1", 1000, 0, 0), (30, "v2", 500, 2000, 1000)],
    )
    ring = KeyRing(store)
    admin, read = (ring.create("default", role).key for role in ("admin", "read"))
    config = ServerConfig(detect_interval_s=0, retention=Retention(0, 0, 0))
    window = ["--from", T0.isoformat(), "--to", (T0 + timedelta(hours=1)).isoformat()]
    with live_server(create_app(config, store=store)) as server:
        as_admin, as_reader = ServerClient(server.url, admin), ServerClient(server.url, read)

        def cli(argv: list[str], client: ServerClient = as_admin) -> str:
            assert run(parse(argv), client) == 0
            return capsys.readouterr().out

        start = ["--from", T0.isoformat()]
        out = cli(["prices", "set", "--model", "m", "--per-second", "0.5", *start])
        assert "compute price recorded" in out and "m " in out
        cli(["prices", "set", "--model", "m", "--version", "v2", "--per-second", "1", *start])
        later = ["--from", (T0 + timedelta(seconds=15)).isoformat()]
        cli(
            [
                "prices",
                "set",
                "--model",
                "m",
                "--per-second",
                "0.25",
                "--per-prediction",
                "1",
                *later,
            ]
        )
        tokens = ["--prompt-per-million", "3", "--completion-per-million", "15"]
        cli(["prices", "set-tokens", "--model", "m", *tokens, *start])

        listed = json.loads(cli(["prices", "list", "--json"], as_reader))
        assert [(p["version"], p["per_second"]) for p in listed["compute"]] == [
            ("", 0.5),
            ("", 0.25),
            ("v2", 1.0),
        ]
        assert listed["compute"][0]["recorded_by"]  # the CLI sends the login name
        assert [p["prompt_per_million"] for p in listed["tokens"]] == [3.0]
        assert "token prices" in cli(["prices", "list"], as_reader)

        result = json.loads(cli(["cost", "--model", "m", *window, "--json"], as_reader))
        rows = {r["version"]: r for r in result["costs"]}
        # v1: 2 s x 0.5 before the change at 15 s, then 1 s x 0.25 + 1 per call.
        assert rows["v1"]["compute_cost"] == pytest.approx(2 * 0.5 + 1 * 0.25 + 1)
        assert rows["v1"]["token_cost"] == pytest.approx((1000 * 3 + 100 * 15) / 1e6)
        assert rows["v2"]["compute_cost"] == pytest.approx(0.5 * 1.0)
        assert rows["v2"]["token_cost"] == pytest.approx((2000 * 3 + 1000 * 15) / 1e6)
        assert rows["v2"]["compute_cost_mean"] == pytest.approx(0.5)
        assert all(r["unpriced"] == 0 and r["currency"] == "USD" for r in rows.values())
        table = cli(["cost", "--model", "m", *window], as_reader)
        assert "v1" in table and "all" in table and f"{2.25 + 0.0045 + 0.5 + 0.021:.6g}" in table

        # A correction of the first period re-prices the same window.
        cli(["prices", "set", "--model", "m", "--per-second", "1.5", *start])
        again = json.loads(cli(["cost", "--model", "m", *window, "--json"], as_reader))
        v1 = next(r for r in again["costs"] if r["version"] == "v1")
        assert v1["compute_cost"] == pytest.approx(2 * 1.5 + 1 * 0.25 + 1)

        with pytest.raises(ServerError) as denied:
            run(parse(["prices", "set", "--model", "m", "--per-second", "1"]), as_reader)
        assert denied.value.status == 403
        with pytest.raises(ServerError) as refused:
            run(
                parse(["prices", "set", "--model", "m", "--per-second", "1", "--currency", "usd$"]),
                as_admin,
            )
        assert refused.value.status == 422 and "currency" in str(refused.value)
        assert run(parse(["cost", "--model", "m", "--from=-1h", "--to=-2h"]), as_reader) == 2
        assert "--to must be after --from" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["prices", "set", "--model", "m", "--per-second", "-1"], "--per-second"),
        (["prices", "set", "--model", "m", "--per-second", "nan"], "--per-second"),
        (
            ["prices", "set", "--model", "m", "--per-second", "1", "--per-prediction", "x"],
            "--per-prediction",
        ),
        (["prices", "set", "--model", "m", "--per-second", "1", "--from", "soon"], "--from"),
        (
            ["prices", "set-tokens", "--model", "m", "--prompt-per-million", "1"],
            "--completion-per-million",
        ),
        (["cost", "--from", "-1h"], "--model"),
    ],
)
def test_bad_flags_name_the_flag(
    argv: list[str], flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        parse(argv)
    assert flag in capsys.readouterr().err


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def test_roles(app_client: Callable[..., Any], store: EmbeddedStore) -> None:
    ring = KeyRing(store)
    keys = {role: ring.create("default", role).key for role in ("ingest", "read", "admin")}
    query = "/v1/cost?model=m&start=0&end=60"
    price = {"kind": "compute", "model": "m", "per_second": 1}
    with app_client() as client:
        for role, key in keys.items():
            h = bearer(key)
            assert (client.get("/v1/prices", headers=h).status_code == 200) == (role != "ingest")
            assert (client.get(query, headers=h).status_code == 200) == (role != "ingest")
            window = {"model": "m", "start": 0, "end": 60}
            asked = client.post("/v1/cost", json=window, headers=h).status_code
            assert (asked == 200) == (role != "ingest"), (role, asked)
            posted = client.post("/v1/prices", json=price, headers=h).status_code
            assert (posted == 200) == (role == "admin"), (role, posted)


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"{", 400, "body is not valid JSON"),
        (b"[]", 422, "body must be a JSON object"),
        (b'{"model": "m", "per_second": 1}', 422, "kind: must be one of"),
        (b'{"kind": "compute", "model": "m", "per_secnd": 1}', 422, "per_secnd: unknown field"),
        (b'{"kind": "compute", "model": "m"}', 422, "per_second: is required"),
        (b'{"kind": "compute", "model": "m", "per_second": -2}', 422, "per_second: must be"),
        (b'{"kind": "compute", "per_second": 1}', 422, "model: is required"),
        (b'{"kind": "compute", "model": "m", "per_second": 1, "version": 2}', 422, "version:"),
        (
            b'{"kind": "compute", "model": "m", "per_second": 1, "effective_from": "May"}',
            422,
            "effective_from: not an ISO-8601 time",
        ),
        (
            b'{"kind": "tokens", "model": "m", "prompt_per_million": 1}',
            422,
            "completion_per_million",
        ),
        (
            b'{"kind": "tokens", "model": "m", "prompt_per_million": 1, '
            b'"completion_per_million": 1, "effective_from": 1e300}',
            422,
            "effective_from: out of range",
        ),
    ],
)
def test_bad_price_payloads(client: Any, body: bytes, status: int, message: str) -> None:
    answer = client.post("/v1/prices", content=body)
    assert answer.status_code == status
    assert message in answer.json()["detail"]
    assert client.get("/v1/prices").json() == {"compute": [], "tokens": []}


def test_cost_route_by_post_and_get_and_its_errors(client: Any, store: EmbeddedStore) -> None:
    insert(store, [(1, "v1", 4000, 0, 0)])
    start, end = T0.timestamp(), (T0 + timedelta(minutes=1)).timestamp()
    price = {"kind": "compute", "model": "m", "per_second": 0.25, "effective_from": start}
    assert client.post("/v1/prices", json=price).status_code == 200
    posted = client.post("/v1/cost", json={"model": "m", "start": start, "end": end}).json()
    got = client.get("/v1/cost?" + urlencode({"model": "m", "start": T0.isoformat(), "end": end}))
    got = got.json()
    assert posted["costs"] == got["costs"]
    assert got["costs"][0]["compute_cost"] == pytest.approx(1.0)
    assert got["window"]["start"] == T0.isoformat()
    for bad, message in [
        ({"start": start, "end": end}, "model: is required"),
        ({"model": "m", "start": end, "end": start}, "end: must be after start"),
        ({"model": "m", "end": end}, "start: is required"),
        ({"model": "m", "start": start, "end": end, "segmnt": 1}, "segmnt: unknown field"),
    ]:
        answer = client.post("/v1/cost", json=bad)
        assert answer.status_code == 422 and message in answer.json()["detail"]
    assert (
        "start: must be a finite" in client.get("/v1/cost?model=m&start=nan&end=1").json()["detail"]
    )
