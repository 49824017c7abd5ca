"""ClickHouse's HTTP protocol over the embedded store, so clickhouse-connect can read it.

Only single read statements pass. The text is scanned outside string literals, quoted names
and comments: a second statement, a first word that is not a read, or a table function that
reaches outside the store (``file``, ``url``, ``python``, ``remote``...), or a mention of the
``api_keys`` table, is refused with 403 before the engine sees it. A trailing ``FORMAT`` clause
becomes the output format, and the statement runs with ``SETTINGS readonly = 1`` appended on a
line of its own as a second guard (the engine refuses a statement that changes that setting).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Mapping

__all__ = ["BridgeError", "prepare"]

_FORMAT = re.compile(r"\s+FORMAT\s+([A-Za-z0-9_]+)\s*;?\s*$", re.IGNORECASE)
_READS = frozenset({"SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXISTS", "EXPLAIN"})
#: Table functions and engines that read or write outside the store, or run code.
_OUTSIDE = frozenset(
    {
        "azureblobstorage",
        "azureblobstoragecluster",
        "cluster",
        "clusterallreplicas",
        "deltalake",
        "dictionary",
        "executable",
        "file",
        "filecluster",
        "gcs",
        "hdfs",
        "hdfscluster",
        "hudi",
        "iceberg",
        "input",
        "jdbc",
        "loop",
        # merge() and the mergeTree* functions name tables by pattern, past the check above.
        "merge",
        "mergetreeindex",
        "mergetreeprojection",
        "mergetreetextindex",
        "mongodb",
        "mysql",
        "odbc",
        "postgresql",
        "python",
        "redis",
        "remote",
        "remotesecure",
        "s3",
        "s3cluster",
        "sqlite",
        "url",
        "urlcluster",
    }
)
#: Tables the endpoint never shows (hashes of API keys).
_HIDDEN = frozenset({"api_keys"})
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class BridgeError(Exception):
    """A request the endpoint refuses; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _tokens(sql: str) -> Iterator[str]:
    """Bare words, ``;`` and ``(`` outside literals, quoted names and comments."""
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch in "'\"`":
            i += 1
            while i < n and sql[i] != ch:
                i += 2 if sql[i] == "\\" else 1
            if i >= n:
                raise BridgeError(400, "unterminated quoted text")
            i += 1
        elif sql.startswith("--", i) or ch == "#":
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            if end < 0:
                raise BridgeError(400, "unterminated comment")
            i = end + 2
        elif ch in ";(":
            yield ch
            i += 1
        else:
            match = _WORD.match(sql, i)
            if match:
                yield match.group(0)
                i = match.end()
            else:
                i += 1


def _check_read_only(sql: str) -> None:
    tokens = list(_tokens(sql))
    words = [t for t in tokens if t not in ";("]
    if not words or words[0].upper() not in _READS:
        raise BridgeError(403, "this endpoint is read-only: one SELECT/SHOW/DESCRIBE/EXPLAIN")
    while tokens and tokens[-1] == ";":
        tokens.pop()
    if ";" in tokens:
        raise BridgeError(403, "one statement per request")
    lowered = sql.lower()
    hidden = [name for name in _HIDDEN if name in lowered]
    if hidden:
        raise BridgeError(403, f"table {hidden[0]} is not readable here")
    for word, nxt in itertools.pairwise(tokens):
        if nxt == "(" and (word.lower() in _OUTSIDE or word.lower().startswith("mergetree")):
            raise BridgeError(403, f"the {word}() table function is not available here")


def prepare(query: str, url_params: Mapping[str, str]) -> tuple[str, str, dict[str, str]]:
    """The read-only statement, its output format and its bound parameters."""
    query = query.strip()
    if not query:
        raise BridgeError(400, "empty query")
    fmt = url_params.get("default_format", "TabSeparated")
    match = _FORMAT.search(query)
    if match:
        fmt = match.group(1)
        query = query[: match.start()]
    query = query.rstrip().rstrip(";")
    _check_read_only(query)
    params = {k[len("param_") :]: v for k, v in url_params.items() if k.startswith("param_")}
    return f"{query}\nSETTINGS readonly = 1", fmt, params
