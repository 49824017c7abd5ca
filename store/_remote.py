"""A ClickHouse server (or ``keelwatch serve``'s ClickHouse endpoint) through clickhouse-connect."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

import pyarrow as pa

from ._base import StoreError, StoreUnavailable, check_identifier, check_token

__all__ = ["ClickHouseStore"]


def _failure(exc: Exception, sql: str) -> StoreError:
    """``StoreUnavailable`` when the server did not answer, else ``StoreError``.

    clickhouse-connect raises ``OperationalError`` when a request got no answer (connection
    refused or reset, timeout) or the server stayed overloaded (429/503/504 after retries), and
    another ``DatabaseError`` when the server refused the statement.
    """
    from clickhouse_connect.driver.exceptions import OperationalError

    kind = StoreUnavailable if isinstance(exc, OperationalError) else StoreError
    return kind(str(exc), sql)


class ClickHouseStore:
    """The same DDL and queries as the embedded store, sent to a ClickHouse server over HTTP.

    One store may be shared by threads: each statement stands alone (no temporary tables or
    ``SET``), so no HTTP session ties them together. With one, the server and the client both
    refuse a second statement while the first runs.
    """

    kind = "clickhouse"

    def __init__(self, url: str, **client_options: Any) -> None:
        import clickhouse_connect

        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"KEELWATCH_CLICKHOUSE_URL must be http(s)://[user:pw@]host:port: {url!r}"
            )
        database = parts.path.strip("/") or "default"
        options: dict[str, Any] = {"autogenerate_session_id": False, **client_options}
        try:
            self._client = clickhouse_connect.get_client(
                host=parts.hostname,
                port=parts.port or (8443 if parts.scheme == "https" else 8123),
                username=unquote(parts.username or "default"),
                password=unquote(parts.password or ""),
                database=database,
                secure=parts.scheme == "https",
                **options,
            )
        except Exception as exc:
            raise StoreUnavailable(f"cannot reach ClickHouse at {parts.hostname}: {exc}") from exc

    def command(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        """Run a statement that returns nothing."""
        try:
            self._client.command(sql, parameters=dict(params or {}))
        except Exception as exc:
            raise _failure(exc, sql) from exc

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> pa.Table:
        """Run a ``SELECT`` and return an Arrow table."""
        try:
            return self._client.query_arrow(sql, parameters=dict(params or {}))
        except Exception as exc:
            raise _failure(exc, sql) from exc

    def insert(self, table: str, data: pa.Table, dedup_token: str | None = None) -> None:
        """Insert an Arrow table; ``dedup_token`` becomes ``insert_deduplication_token``."""
        settings: dict[str, Any] = {"optimize_on_insert": 0}  # see INSERT_SETTINGS
        if dedup_token is not None:
            settings["insert_deduplication_token"] = check_token(dedup_token)
        try:
            self._client.insert_arrow(check_identifier(table), data, settings=settings)
        except Exception as exc:
            raise _failure(exc, f"INSERT INTO {table}") from exc

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()
