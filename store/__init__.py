"""Where keelwatch keeps its data: ClickHouse, embedded (chDB) by default or a server at scale."""

from __future__ import annotations

import os
from pathlib import Path

from keelwatch import environ as _environ

from ._base import Store, StoreError, StoreUnavailable, check_identifier, check_token
from ._embedded import EmbeddedStore
from ._remote import ClickHouseStore
from ._retention import RETAINED, Retention, apply_retention
from ._schema import MIGRATIONS, Migration, migrate

__all__ = [
    "DEFAULT_DATA_DIR",
    "MIGRATIONS",
    "RETAINED",
    "ClickHouseStore",
    "EmbeddedStore",
    "Migration",
    "Retention",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "apply_retention",
    "check_identifier",
    "check_token",
    "migrate",
    "open_store",
]

DEFAULT_DATA_DIR = "./keelwatch-data"


def open_store(data: str | Path | None = None, clickhouse_url: str | None = None) -> Store:
    """Open the configured store and bring its schema up to date.

    A ClickHouse URL (argument, then ``KEELWATCH_CLICKHOUSE_URL``) selects a server; otherwise
    the embedded engine opens ``data`` (argument, then ``KEELWATCH_DATA``, then
    ``./keelwatch-data``).
    """
    url = clickhouse_url or os.environ.get(_environ.KEELWATCH_CLICKHOUSE_URL, "").strip()
    store: Store
    if url:
        store = ClickHouseStore(url)
    else:
        store = EmbeddedStore(data or _environ.env_str(_environ.KEELWATCH_DATA, DEFAULT_DATA_DIR))
    try:
        migrate(store)
    except Exception:
        store.close()
        raise
    return store
