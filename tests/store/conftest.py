"""Fixtures for store tests: a ClickHouse HTTP endpoint for ``ClickHouseStore``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from keelwatch.store import EmbeddedStore
from tests.store.chhttp import ClickHouseHTTP

#: The endpoint's database: empty, next to the embedded store's ``default`` in the same engine.
REMOTE_DATABASE = "remote"
#: Servers often run in local time; a +05:30 zone shows any time sent or read without its zone.
SERVER_TIMEZONE = "Asia/Kolkata"


@pytest.fixture
def clickhouse_http(store: EmbeddedStore, tmp_path: Path) -> Iterator[ClickHouseHTTP]:
    """A read-write ClickHouse HTTP endpoint over ``store``'s engine (one engine per process),
    in time zone ``SERVER_TIMEZONE``, with an empty database ``remote``."""
    profile = {"session_timezone": SERVER_TIMEZONE}
    with ClickHouseHTTP(store.path, tmp_path / "chhttp-spool", profile) as server:
        server.run(f"CREATE DATABASE {REMOTE_DATABASE}")
        yield server


@pytest.fixture
def clickhouse_url(clickhouse_http: ClickHouseHTTP) -> str:
    """``http://127.0.0.1:<port>/remote``: the endpoint's empty database, for a store."""
    return f"{clickhouse_http.url}/{REMOTE_DATABASE}"
