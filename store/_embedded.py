"""The embedded store: the ClickHouse engine in this process (chDB).

A chDB data directory has exactly one owner process and one engine per process, so the server
owns it and other processes read it through the server's ClickHouse HTTP endpoint.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.ipc as ipc

from ._base import INSERT_SETTINGS, StoreError, StoreUnavailable, check_identifier, check_token
from ._params import format_param

__all__ = ["EmbeddedStore"]


def _bind(params: Mapping[str, Any] | None) -> dict[str, str]:
    return {name: format_param(value) for name, value in (params or {}).items()}


class EmbeddedStore:
    """A chDB session over ``path``, serialised by a lock (the engine is shared by all threads)."""

    kind = "embedded"

    def __init__(self, path: str | Path) -> None:
        from chdb import session as chdb_session

        self.path = Path(path).resolve()
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self._session = chdb_session.Session(str(self.path))
        except Exception as exc:
            raise StoreUnavailable(f"cannot open embedded store at {self.path}: {exc}") from exc
        self._lock = threading.Lock()
        self._closed = False
        self._barrier: Callable[[str], None] | None = None

    def raw(
        self, sql: str, fmt: str = "TabSeparated", params: Mapping[str, str] | None = None
    ) -> bytes:
        """Run ``sql`` and return the engine's output bytes in ``fmt`` (used by the HTTP bridge).

        ``params`` are already in the engine's escaped text form (as ``param_*`` arrive over
        ClickHouse's HTTP protocol); :func:`format_param` renders Python values that way.
        """
        barrier = self._barrier
        if barrier is not None:
            barrier(sql)
        return self._run(sql, fmt, params)

    def set_read_barrier(self, barrier: Callable[[str], None] | None) -> None:
        """Call ``barrier(sql)`` before each statement other than :meth:`insert`.

        The collector server acknowledges batches once spooled and inserts them behind; its
        barrier waits for those still in flight, so every reader of this store (the server is
        its only owner) sees each acknowledged row.
        """
        self._barrier = barrier

    def _run(
        self, sql: str, fmt: str = "TabSeparated", params: Mapping[str, str] | None = None
    ) -> bytes:
        bound = dict(params or {})
        with self._lock:
            if self._closed:
                raise StoreUnavailable("embedded store is closed", sql)
            try:
                result = self._session.query(sql, fmt, params=bound or None)
            except Exception as exc:
                raise StoreError(str(exc), sql) from exc
        return bytes(result.bytes()) if result is not None else b""

    def command(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        """Run a statement that returns nothing."""
        self.raw(sql, "TabSeparated", _bind(params))

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> pa.Table:
        """Run a ``SELECT`` and return an Arrow table."""
        data = self.raw(sql, "ArrowStream", _bind(params))
        if not data:
            return pa.table({})
        return ipc.open_stream(pa.py_buffer(data)).read_all()

    def insert(self, table: str, data: pa.Table, dedup_token: str | None = None) -> None:
        """Insert an Arrow table through chDB's ``Python()`` table function."""
        check_identifier(table)
        columns = ", ".join(check_identifier(name) for name in data.column_names)
        settings = f" SETTINGS {INSERT_SETTINGS}"
        if dedup_token is not None:
            settings += f", insert_deduplication_token='{check_token(dedup_token)}'"
        # chDB resolves the name inside Python(...) from this frame's locals.
        arrow_data = data  # noqa: F841
        self._run(
            f"INSERT INTO {table} ({columns}){settings} SELECT {columns} FROM Python(arrow_data)"
        )

    def close(self) -> None:
        """Close the engine; the data directory can then be opened again."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._session.close()
