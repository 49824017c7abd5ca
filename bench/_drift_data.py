"""The data ``drift_vs_evidently`` gives both tools: generated frames, and the current rows as
the ``predictions`` the ingest API writes."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

SEED = 20260101


def generate(
    rows: int, features: int, case: str, current_rows: int | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reference (``rows``) and current (``current_rows``, default ``rows``) frames; every
    fourth numeric feature shifts, every fifth scales."""
    import numpy as np
    import pandas as pd

    m = current_rows or rows
    rng = np.random.default_rng(SEED)
    ref, cur = {}, {}
    for i in range(features):
        name = f"f{i:02d}"
        ref[name] = rng.normal(size=rows)
        shift = 0.25 if i % 4 == 0 else 0.0
        scale = 1.5 if i % 5 == 0 else 1.0
        cur[name] = rng.normal(shift, scale, size=m)
    if case == "mixed":
        for i in range(features // 4):
            name = f"c{i:02d}"
            cats = np.array([f"v{j}" for j in range(3 + i)])
            p = np.linspace(1.0, 2.0, cats.size)
            ref[name] = rng.choice(cats, rows, p=p / p.sum())
            q = p[::-1] if i % 2 else p
            cur[name] = rng.choice(cats, m, p=q / q.sum())
        ref["few"] = rng.integers(0, 4, rows).astype(float)
        cur["few"] = rng.integers(0, 5, m).astype(float)
    return pd.DataFrame(ref), pd.DataFrame(cur)


def _map(names: list[str], values: np.ndarray, item: object) -> object:
    import numpy as np
    import pyarrow as pa

    n, k = values.shape
    columns = pa.array(np.tile(np.arange(k, dtype=np.int32), n))
    keys = pa.DictionaryArray.from_arrays(columns, pa.array(names)).cast(pa.string())
    offsets = pa.array(np.arange(0, n * k + 1, k, dtype=np.int32))
    return pa.MapArray.from_arrays(offsets, keys, pa.array(values.ravel(), item))


def predictions_table(frame: pd.DataFrame, first: int = 0) -> object:
    """Current rows as ``predictions`` (what the ingest API writes), built without Python loops."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    n = len(frame)
    numeric = [c for c in frame.columns if frame[c].dtype != object]
    categorical = [c for c in frame.columns if frame[c].dtype == object]
    index = np.arange(first, first + n)
    ts = pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(index, unit="us")
    ids = pa.array(np.char.mod("p%09d", index))
    cat = (
        _map(categorical, frame[categorical].to_numpy(dtype=object), pa.string())
        if categorical
        else pa.array([[] for _ in range(n)], pa.map_(pa.string(), pa.string()))
    )
    return pa.table(
        {
            "project": pa.array(["default"] * n),
            "model": pa.array(["bench"] * n),
            "prediction_id": ids,
            "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
            "num": _map(numeric, frame[numeric].to_numpy(dtype=float), pa.float64()),
            "cat": cat,
        }
    )


def window(rows: int) -> object:
    """The window holding ``rows`` predictions written by ``predictions_table`` (one a µs)."""
    from keelwatch.detectors import Window

    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    return Window("bench", start, start + timedelta(seconds=rows / 1e6 + 1))
