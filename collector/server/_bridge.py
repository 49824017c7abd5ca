"""ClickHouse's HTTP protocol over the embedded store, so clickhouse-connect can read it.

Only reads pass: a trailing ``FORMAT`` clause becomes the output format, and the statement is
run with ``SETTINGS readonly = 1`` appended (a second SETTINGS clause in the text makes the
engine refuse it too), which also refuses the ``file``/``url`` table functions.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["BridgeError", "prepare"]

_FORMAT = re.compile(r"\s+FORMAT\s+([A-Za-z0-9_]+)\s*;?\s*$", re.IGNORECASE)
_FIRST_WORD = re.compile(r"^\s*(?:--[^\n]*\n\s*|/\*.*?\*/\s*)*([A-Za-z]+)", re.DOTALL)
_READS = frozenset({"SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXISTS", "EXPLAIN"})
_HOST_OBJECTS = re.compile(r"\bpython\s*\(", re.IGNORECASE)


class BridgeError(Exception):
    """A request the endpoint refuses; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def prepare(query: str, url_params: Mapping[str, str]) -> tuple[str, str, dict[str, str]]:
    """The read-only statement, its output format and its bound parameters."""
    query = query.strip()
    if not query:
        raise BridgeError(400, "empty query")
    first = _FIRST_WORD.match(query)
    if not first or first.group(1).upper() not in _READS:
        raise BridgeError(403, "this endpoint is read-only")
    if _HOST_OBJECTS.search(query):
        raise BridgeError(403, "the python() table function is not available here")
    fmt = url_params.get("default_format", "TabSeparated")
    match = _FORMAT.search(query)
    if match:
        fmt = match.group(1)
        query = query[: match.start()]
    query = query.rstrip().rstrip(";")
    params = {k[len("param_") :]: v for k, v in url_params.items() if k.startswith("param_")}
    return f"{query}\nSETTINGS readonly = 1", fmt, params
