"""ClickHouseStore against the ClickHouse engine over ClickHouse's HTTP protocol.

Each test talks to the engine only through ``ClickHouseStore(url)`` and clickhouse-connect; the
endpoint (``chhttp``) serves the embedded store's engine, so the same data can be compared with
an ``EmbeddedStore`` in the same process.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from keelwatch.collector.server import parse_predictions
from keelwatch.collector.server._ingest import batch_token
from keelwatch.detectors import DriftConfig, Window, register_baseline, run_drift, store_run
from keelwatch.store import (
    MIGRATIONS,
    ClickHouseStore,
    EmbeddedStore,
    Store,
    StoreError,
    StoreUnavailable,
    migrate,
)
from tests.store.chhttp import ClickHouseHTTP

ALL_NUMERIC = ("wasserstein", "ks", "psi", "kl_div", "jensen_shannon", "hellinger", "chi_square")


@pytest.fixture
def remote(clickhouse_url: str) -> Iterator[ClickHouseStore]:
    opened = ClickHouseStore(clickhouse_url)
    try:
        yield opened
    finally:
        opened.close()


def _count(store: Store, sql: str) -> int:
    return int(store.query(sql).column(0)[0].as_py())


def _tables(store: Store) -> list[dict[str, Any]]:
    return store.query(
        "SELECT name, engine FROM system.tables WHERE database = currentDatabase() ORDER BY name"
    ).to_pylist()


def _columns(store: Store) -> list[dict[str, Any]]:
    return store.query(
        "SELECT table, name, type FROM system.columns WHERE database = currentDatabase() "
        "ORDER BY table, position"
    ).to_pylist()


def test_migrations_build_the_embedded_schema_and_rerun_as_no_op(
    store: EmbeddedStore, remote: ClickHouseStore
) -> None:
    where = remote.query("SELECT currentDatabase() AS db, timezone() AS tz").to_pylist()
    assert where == [{"db": "remote", "tz": "Asia/Kolkata"}]
    assert _tables(remote) == []
    assert migrate(remote) == [m.version for m in MIGRATIONS]
    tables = _tables(remote)
    assert tables == _tables(store)
    assert {"predictions", "predictions_1m_mv", "schema_migrations"} <= {t["name"] for t in tables}
    columns = _columns(remote)
    assert columns == _columns(store)
    # The tables are in the URL's database, not the engine's default one.
    names = "SELECT count() FROM system.tables WHERE database = 'remote'"
    assert _count(store, names) == len(tables)

    assert migrate(remote) == []
    assert (_tables(remote), _columns(remote)) == (tables, columns)
    applied = remote.query("SELECT version FROM schema_migrations ORDER BY version")
    assert applied.column("version").to_pylist() == [m.version for m in MIGRATIONS]


def _batch(ids: list[str], now: float, label: str) -> tuple[pa.Table, str]:
    """Predictions as the collector builds them, and the token of their request body."""
    payload = {
        "records": [
            {
                "prediction_id": pid,
                "model": "churn",
                "ts": now - 60 + i,
                "latency_ms": 1.5 + i,
                "features": {"age": 30.0 + i, "plan": "pro" if i % 2 else "free"},
                "output": {"label": label, "proba": [0.25, 0.75], "prompt_tokens": 7},
                "tags": {"region": "eu"},
            }
            for i, pid in enumerate(ids)
        ]
    }
    batch = parse_predictions(payload, "default", now)
    assert not batch.rejected
    return batch.table, batch_token("predictions", "default", json.dumps(payload).encode())


def test_a_token_makes_a_repeated_insert_a_no_op(
    store: EmbeddedStore, remote: ClickHouseStore
) -> None:
    migrate(remote)
    now = time.time()
    first, first_token = _batch([f"a{i}" for i in range(10)], now, "yes")
    second, second_token = _batch([f"b{i}" for i in range(5)], now, "no")
    raw, final = "SELECT count() FROM predictions", "SELECT count() FROM predictions FINAL"

    remote.insert("predictions", first, first_token)
    remote.insert("predictions", first, first_token)
    assert (_count(remote, raw), _count(remote, final)) == (10, 10)
    # The token decides, not the rows: other rows under a used token are dropped too.
    remote.insert("predictions", second, first_token)
    assert _count(remote, raw) == 10
    remote.insert("predictions", second, second_token)
    assert (_count(remote, raw), _count(remote, final)) == (15, 15)
    # The same records under a new token are stored again and collapse on read.
    remote.insert("predictions", first, "replayed-1")
    assert _count(remote, final) == 15

    # Arrow over HTTP stores exactly what the embedded engine stores from the same table.
    store.insert("predictions", first, first_token)
    same = (
        "SELECT * EXCEPT received_at FROM {db}.predictions FINAL "
        "WHERE prediction_id LIKE 'a%' ORDER BY prediction_id"
    )
    assert (
        store.query(same.format(db="remote")).to_pylist()
        == store.query(same.format(db="default")).to_pylist()
    )


def _window_records(rng: np.random.Generator, start: float, n: int) -> pa.Table:
    payload = {
        "records": [
            {
                "prediction_id": f"p{i}",
                "model": "m",
                "ts": start + i * 0.001,
                "features": {
                    "x": float(rng.normal(0.4, 1.3)),
                    "ties": float(rng.integers(5, 45)),
                    "color": str(rng.choice(["red", "green", "blue", "pink"])),
                },
            }
            for i in range(n)
        ]
    }
    batch = parse_predictions(payload, "default", start + n)
    assert not batch.rejected
    return batch.table


def test_drift_through_the_server_matches_the_embedded_store(
    store: EmbeddedStore, remote: ClickHouseStore
) -> None:
    migrate(remote)
    rng = np.random.default_rng(2024)
    reference = pd.DataFrame(
        {
            "x": rng.normal(size=1500),
            "ties": rng.integers(0, 40, 1500).astype(float),
            "color": rng.choice(["red", "green", "blue"], 1500, p=[0.5, 0.3, 0.2]),
        }
    )
    start = time.time() - 3600
    current = _window_records(rng, start, 1000)
    window = Window(
        "m",
        datetime.fromtimestamp(start - 1, timezone.utc),
        datetime.fromtimestamp(start, timezone.utc) + timedelta(seconds=2),
    )
    config = DriftConfig(numeric_methods=ALL_NUMERIC)
    runs = []
    for target in (store, remote):
        baseline = register_baseline(target, "m", reference)
        target.insert("predictions", current, "window-1")
        runs.append(run_drift(target, baseline, window, config))
        store_run(target, runs[-1])
    embedded, served = runs

    assert served.n_current == embedded.n_current == 1000
    assert len(served.results) == len(embedded.results) >= 3 * 2
    for ours in embedded.results:
        theirs = served.result(ours.feature, ours.method)
        assert theirs.score == pytest.approx(ours.score, abs=1e-12), (ours.feature, ours.method)
        if ours.p_value is None:
            assert theirs.p_value is None
        else:
            assert theirs.p_value == pytest.approx(ours.p_value, rel=1e-12, abs=1e-300)
        assert (theirs.n_reference, theirs.n_current, theirs.drifted, theirs.deciding) == (
            ours.n_reference,
            ours.n_current,
            ours.drifted,
            ours.deciding,
        )
    assert served.drifted_features and served.dataset_drift == embedded.dataset_drift
    stored = "SELECT count() FROM drift_results"
    assert _count(remote, stored) == len(served.results)


def test_a_bad_statement_is_a_store_error_naming_it(remote: ClickHouseStore) -> None:
    with pytest.raises(StoreError, match="Syntax error") as info:
        remote.command("SELEC 1")
    assert info.value.sql == "SELEC 1"
    assert not isinstance(info.value, StoreUnavailable)
    missing = "SELECT count() FROM no_such_table WHERE x = {x:UInt8}"
    with pytest.raises(StoreError, match="no_such_table") as info:
        remote.query(missing, {"x": 1})
    assert info.value.sql == missing
    with pytest.raises(StoreError, match="no_such_table") as info:
        remote.insert("no_such_table", pa.table({"x": [1]}), "t-1")
    assert info.value.sql == "INSERT INTO no_such_table"
    # The connection is still good after errors.
    assert _count(remote, "SELECT 42") == 42


def test_an_unreachable_server_is_store_unavailable(
    clickhouse_http: ClickHouseHTTP, clickhouse_url: str
) -> None:
    remote = ClickHouseStore(clickhouse_url)
    clickhouse_http.stop()  # the server goes away under an open store
    try:
        with pytest.raises(StoreUnavailable) as info:
            remote.query("SELECT 1 AS one")
        assert info.value.sql == "SELECT 1 AS one"
    finally:
        remote.close()
    with pytest.raises(StoreUnavailable, match=r"127\.0\.0\.1"):
        ClickHouseStore(clickhouse_url)


def test_one_store_is_shared_by_threads(remote: ClickHouseStore) -> None:
    migrate(remote)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(5):
                remote.insert("audit_log", pa.table({"actor": [f"t{n}"], "action": [str(i)]}))
                remote.query("SELECT count() FROM audit_log")
        except BaseException as exc:  # reported below, with the thread's own error
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert _count(remote, "SELECT count() FROM audit_log") == 20
