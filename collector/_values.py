"""Turning arbitrary Python, NumPy and pandas values into JSON-safe wire values.

NumPy and pandas are never imported here: their types are recognised through ``sys.modules``, so
the SDK works (and stays cheap to import) where they are not installed.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from typing import Any

MAX_STR = 1024
_isfinite = math.isfinite
_SCALARS = frozenset({float, int, str, bool, type(None)})


def plain(value: Any) -> Any:
    """NumPy scalars and arrays to Python ones; anything else unchanged."""
    np = sys.modules.get("numpy")
    if np is not None:
        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, np.ndarray):
            return value.tolist()
    return value


def feature(value: Any) -> str | int | float | None:
    """One feature value as the wire wants it: number, string, or null (bools become strings)."""
    kind = type(value)
    if kind is float:  # the common cases first: this runs once per feature per record
        return value if _isfinite(value) else None
    if kind is int or (kind is str and len(value) <= MAX_STR):
        return value
    value = plain(value)
    if value is None or isinstance(value, str):
        return value if value is None or len(value) <= MAX_STR else value[:MAX_STR]
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    pd = sys.modules.get("pandas")
    if pd is not None and (value is pd.NA or value is pd.NaT):
        return None
    isoformat = getattr(value, "isoformat", None)
    text = isoformat() if callable(isoformat) else str(value)
    return text[:MAX_STR]


def number(value: Any) -> float | None:
    """A finite float, or ``None``."""
    value = plain(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def count(value: Any) -> int | None:
    """A non-negative int (token counts), or ``None``."""
    value = plain(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        return None
    return int(value) if math.isfinite(value) else None


def text(value: Any, limit: int = MAX_STR) -> str | None:
    """A string (truncated to ``limit``), or ``None``."""
    value = plain(value)
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    out = value if isinstance(value, str) else str(value)
    return out[:limit]


def kind(value: Any) -> str:
    """``dataframe``, ``series``, ``matrix`` (2-D array), ``vector`` (1-D array), ``mapping``,
    ``rows`` (a list of mappings) or ``scalar``."""
    exact = type(value)  # the common cases first, without the ABC isinstance checks
    if exact is dict:
        return "mapping"
    if exact in _SCALARS:
        return "scalar"
    pd = sys.modules.get("pandas")
    if pd is not None:
        if isinstance(value, pd.DataFrame):
            return "dataframe"
        if isinstance(value, pd.Series):
            return "series"
    np = sys.modules.get("numpy")
    if np is not None and isinstance(value, np.ndarray):
        return {1: "vector", 2: "matrix"}.get(value.ndim, "scalar")
    if isinstance(value, Mapping):
        return "mapping"
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, Mapping) for v in value):
        return "rows"
    return "scalar"


def sequence(value: Any) -> list[Any] | None:
    """A batch output as a list of per-row values, or ``None`` when it is not a sequence."""
    pd = sys.modules.get("pandas")
    if pd is not None:
        if isinstance(value, pd.DataFrame):
            return list(value.to_numpy().tolist())
        if isinstance(value, pd.Series):
            return list(value.tolist())
    np = sys.modules.get("numpy")
    if np is not None and isinstance(value, np.ndarray):
        return list(value.tolist()) if value.ndim >= 1 else None
    if isinstance(value, (list, tuple)):
        return list(value)
    return None
