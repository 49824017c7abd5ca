"""Values for server-side query parameters (``{name:Type}``) as the engine's text form.

The embedded engine receives parameter values as text in ClickHouse's escaped format, exactly
like ``param_<name>`` on the HTTP interface: a top-level string is escaped but not quoted, while
strings inside arrays, tuples and maps are quoted. Passing Python values through as they are
mangles quotes, backslashes, ``None`` and sub-second times, so every value is rendered here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime, timezone
from typing import Any

__all__ = ["format_param"]

_ESCAPES = str.maketrans(
    {"\\": "\\\\", "'": "\\'", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0", "\b": "\\b"}
)


def _number(value: float) -> str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(value)


def _text(value: Any) -> str | None:
    """The unquoted text of a scalar, or ``None`` if ``value`` is a container."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, str):
        return value.translate(_ESCAPES)
    if isinstance(value, datetime):
        utc = value.astimezone(timezone.utc) if value.tzinfo else value
        return utc.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, date):
        return value.isoformat()
    return None


def _nested(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, (str, datetime, date)):
        return f"'{_text(value)}'"
    return format_param(value)


def format_param(value: Any) -> str:
    """``value`` as the text a ``{name:Type}`` parameter of the matching type parses."""
    if value is None:
        return "\\N"
    text = _text(value)
    if text is not None:
        return text
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_nested(k)}: {_nested(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple, set, frozenset)):
        return "[" + ", ".join(_nested(v) for v in value) + "]"
    raise TypeError(f"cannot bind a {type(value).__name__} as a query parameter")
