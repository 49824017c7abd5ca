"""The store interface shared by the embedded engine and a ClickHouse server.

Exceptions::

    StoreError                 any failure talking to the store (the cause is chained)
    └── StoreUnavailable       the store cannot be reached or opened
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import pyarrow as pa

__all__ = [
    "INSERT_SETTINGS",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "check_identifier",
    "check_token",
]

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_TOKEN = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")

#: Settings of every insert. ``optimize_on_insert = 0``: by default the engine runs the table's
#: merge algorithm (ReplacingMergeTree's) over each inserted block, copying every row once more
#: to drop duplicates *within* the block; with the Map feature columns that was 3 of the 5 us per
#: row of a 100,000-row insert here. Ingested batches almost never repeat an id inside one
#: insert, and a repeat is collapsed by background merges and ``FINAL`` like any replayed
#: record, so exact reads are unchanged.
INSERT_SETTINGS = "optimize_on_insert = 0"


class StoreError(Exception):
    """A query or insert failed; ``sql`` holds the statement that failed (without values)."""

    def __init__(self, message: str, sql: str = "") -> None:
        super().__init__(message)
        self.sql = sql


class StoreUnavailable(StoreError):
    """The store cannot be reached or opened."""


def check_identifier(name: str) -> str:
    """Return ``name`` if it is a plain SQL identifier, else raise ``ValueError``."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a valid identifier: {name!r}")
    return name


def check_token(token: str) -> str:
    """Return ``token`` if safe as an insert deduplication token, else raise ``ValueError``."""
    if not _TOKEN.match(token):
        raise ValueError(f"not a valid deduplication token: {token!r}")
    return token


@runtime_checkable
class Store(Protocol):
    """Where predictions, outcomes, baselines and results live: a ClickHouse engine.

    Every value from outside goes through ``params`` and is bound server-side with the
    ``{name:Type}`` syntax; SQL text is never built from user input.
    """

    #: ``"embedded"`` for chDB in this process, ``"clickhouse"`` for a server reached over HTTP.
    kind: str

    def command(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        """Run a statement that returns nothing (DDL, ``INSERT ... SELECT``)."""

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> pa.Table:
        """Run a ``SELECT`` and return its result as an Arrow table."""

    def insert(self, table: str, data: pa.Table, dedup_token: str | None = None) -> None:
        """Insert ``data`` (columns named as in ``table``); a repeated token is a no-op."""

    def close(self) -> None:
        """Release the engine or connection."""
