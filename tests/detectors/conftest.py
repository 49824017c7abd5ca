"""Fixtures for detector tests: predictions written straight into the store."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from keelwatch.detectors import Window
from keelwatch.store import Store

START = datetime(2026, 1, 1, tzinfo=timezone.utc)
_TAGS = pa.map_(pa.string(), pa.string())


def _map(frame: pd.DataFrame, names: list[str], numeric: bool) -> pa.Array:
    n = len(frame)
    item = pa.float64() if numeric else pa.string()
    if not names:
        return pa.array([[] for _ in range(n)], pa.map_(pa.string(), item))
    values = (
        frame[names].to_numpy(dtype=float, na_value=np.nan)
        if numeric
        else frame[names].astype(str).to_numpy(dtype=object)
    )
    valid = np.isfinite(values) if numeric else frame[names].notna().to_numpy()
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(valid.sum(axis=1), out=offsets[1:])
    keys = np.broadcast_to(np.array(names, dtype=object), values.shape)[valid]
    return pa.MapArray.from_arrays(
        pa.array(offsets), pa.array(keys, pa.string()), pa.array(values[valid], item)
    )


def insert_predictions(
    store: Store,
    model: str,
    frame: pd.DataFrame,
    start: datetime = START,
    version: str = "",
    slot: str = "",
    **columns: object,
) -> Window:
    """Write ``frame``'s rows as predictions one millisecond apart; return their window."""
    n = len(frame)
    numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c].dtype)]
    categorical = [c for c in frame.columns if c not in numeric]
    ts = pd.date_range(start, periods=n, freq="1ms", tz="UTC")
    table = {
        "project": pa.array(["default"] * n),
        "model": pa.array([model] * n),
        "version": pa.array([version] * n),
        "slot": pa.array([slot] * n),
        "prediction_id": pa.array([uuid.uuid4().hex for _ in range(n)]),
        "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
        "num": _map(frame, numeric, True),
        "cat": _map(frame, categorical, False),
    }
    for name, value in columns.items():
        table[name] = pa.array(value)  # type: ignore[call-overload]
    store.insert("predictions", pa.table(table))
    return Window(model, start, start + timedelta(milliseconds=n + 1), version=version, slot=slot)


def put_predictions(
    store: Store,
    ts: list[datetime],
    x: np.ndarray | None = None,
    tags: list[dict[str, str]] | None = None,
    model: str = "m",
) -> None:
    """Predictions at ``ts`` with numeric feature ``x`` (key ``"x"``) and ``tags``."""
    n = len(ts)
    x = np.zeros(n) if x is None else x
    store.insert(
        "predictions",
        pa.table(
            {
                "project": ["default"] * n,
                "model": [model] * n,
                "prediction_id": [uuid.uuid4().hex for _ in range(n)],
                "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
                "num": pa.array([[("x", float(v))] for v in x], pa.map_(pa.string(), pa.float64())),
                "tags": pa.array(
                    [list((t or {}).items()) for t in tags or [{}] * n],
                    pa.map_(pa.string(), pa.string()),
                ),
            }
        ),
    )


@pytest.fixture
def put() -> object:
    """``put_predictions`` for tests."""
    return put_predictions


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture
def insert() -> object:
    """``insert_predictions`` for tests (test modules are not a package)."""
    return insert_predictions
