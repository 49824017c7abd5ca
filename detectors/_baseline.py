"""Baselines: the reference data a model is compared against, and its stored profile.

Registering a baseline copies its rows into the store (``baseline_rows``) once and computes the
profile there in SQL: per numeric feature the count, nulls, min/max, mean, standard deviation
(population, ddof=0), quantiles and Sturges bin edges with their counts; per categorical feature
the category counts. Baselines are versioned per model and carry lineage (source, content hash,
feature schema, who registered them and when).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from keelwatch.store import Store

__all__ = [
    "Baseline",
    "BaselineError",
    "FeatureProfile",
    "get_baseline",
    "list_baselines",
    "load_frame",
    "register_baseline",
    "sturges_edges",
]

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


class BaselineError(ValueError):
    """A baseline source is missing, unreadable or unusable."""


@dataclass(frozen=True)
class FeatureProfile:
    """What the baseline says about one feature."""

    name: str
    kind: str  # "numeric" or "categorical"
    count: int
    nulls: int
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    std: float | None = None
    quantiles: tuple[float, ...] = ()
    edges: tuple[float, ...] = ()
    counts: tuple[int, ...] = ()
    categories: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Baseline:
    """A registered baseline and its profile."""

    baseline_id: str
    model: str
    version: int
    source: str
    content_hash: str
    row_count: int
    created_by: str
    created_at: datetime
    features: tuple[FeatureProfile, ...]

    def feature(self, name: str) -> FeatureProfile:
        for profile in self.features:
            if profile.name == name:
                return profile
        raise KeyError(name)


def sturges_edges(lo: float, hi: float, n: int) -> np.ndarray:
    """Equal-width edges over ``[lo, hi]`` with Sturges' bin count, as ``np.histogram_bin_edges``.

    Bin count ``ceil(ptp / (ptp / (log2(n) + 1)))``, i.e. ``ceil(log2(n) + 1)``; a constant
    feature gets numpy's single bin ``[lo - 0.5, hi + 0.5]``.
    """
    if n <= 0:
        raise ValueError("n must be positive")
    if hi <= lo:
        return np.array([lo - 0.5, hi + 0.5])
    width = (hi - lo) / (np.log2(n) + 1.0)
    bins = int(np.ceil((hi - lo) / width))
    return np.linspace(lo, hi, bins + 1)


def load_frame(source: Any) -> tuple[pd.DataFrame, str]:
    """A DataFrame and a description of where it came from, from a path or a data frame."""
    if isinstance(source, pd.DataFrame):
        return source, "dataframe"
    if hasattr(source, "to_pandas"):  # polars or Arrow
        return source.to_pandas(), f"{type(source).__module__}.{type(source).__name__}"
    path = Path(source)
    if not path.is_file():
        raise BaselineError(f"baseline file not found: {path}")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(path), str(path)
        if path.suffix.lower() in (".csv", ".txt"):
            return pd.read_csv(path), str(path)
    except Exception as exc:
        raise BaselineError(f"cannot read baseline file {path}: {exc}") from exc
    raise BaselineError(f"baseline file {path} must be .csv or .parquet")


def _split(frame: pd.DataFrame) -> tuple[list[str], list[str]]:
    numeric, categorical = [], []
    for name in frame.columns:
        if not isinstance(name, str) or not name:
            raise BaselineError(f"baseline column names must be non-empty strings: {name!r}")
        dtype = frame[name].dtype
        if pd.api.types.is_bool_dtype(dtype) or not pd.api.types.is_numeric_dtype(dtype):
            categorical.append(name)
        else:
            numeric.append(name)
    return numeric, categorical


def _map_column(
    names: list[str], values: np.ndarray, valid: np.ndarray, item_type: pa.DataType
) -> pa.Array:
    """A ``Map`` column from an ``n x k`` matrix, keeping the entries where ``valid``."""
    n = values.shape[0]
    if not names:
        return pa.array([[] for _ in range(n)], pa.map_(pa.string(), item_type))
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(valid.sum(axis=1), out=offsets[1:])
    keys = np.broadcast_to(np.array(names, dtype=object), values.shape)[valid]
    return pa.MapArray.from_arrays(
        pa.array(offsets), pa.array(keys, pa.string()), pa.array(values[valid], item_type)
    )


def _category_strings(column: pd.Series) -> np.ndarray:
    if pd.api.types.is_bool_dtype(column.dtype):
        return np.where(column.to_numpy(dtype=bool), "true", "false").astype(object)
    return column.astype(str).to_numpy(dtype=object)


def _rows_table(
    baseline_id: str, frame: pd.DataFrame, numeric: list[str], categorical: list[str]
) -> pa.Table:
    n = len(frame)
    num = frame[numeric].to_numpy(dtype=float, na_value=np.nan) if numeric else np.empty((n, 0))
    cat = (
        np.column_stack([_category_strings(frame[c]) for c in categorical])
        if categorical
        else np.empty((n, 0), dtype=object)
    )
    cat_valid = frame[categorical].notna().to_numpy() if categorical else np.empty((n, 0), bool)
    return pa.table(
        {
            "baseline_id": pa.array([baseline_id] * n, pa.string()),
            "row": pa.array(np.arange(n, dtype=np.uint64)),
            "num": _map_column(numeric, num, np.isfinite(num), pa.float64()),
            "cat": _map_column(categorical, cat, cat_valid, pa.string()),
        }
    )


def _numeric_profile(store: Store, baseline_id: str, name: str, total: int) -> FeatureProfile:
    params = {"b": baseline_id, "f": name}
    stats = store.query(
        "SELECT count() AS n, min(x) AS lo, max(x) AS hi, avg(x) AS mean, stddevPop(x) AS std, "
        f"quantilesExact({', '.join(map(str, QUANTILES))})(x) AS q "
        "FROM (SELECT num[{f:String}] AS x FROM baseline_rows "
        "WHERE baseline_id = {b:String} AND mapContains(num, {f:String}))",
        params,
    ).to_pylist()[0]
    n = int(stats["n"])
    if n == 0:
        return FeatureProfile(name, "numeric", 0, total)
    edges = sturges_edges(float(stats["lo"]), float(stats["hi"]), n)
    counts = store.query(
        "SELECT arrayCount(e -> e <= x, {inner:Array(Float64)}) AS bin, count() AS c "
        "FROM (SELECT num[{f:String}] AS x FROM baseline_rows "
        "WHERE baseline_id = {b:String} AND mapContains(num, {f:String})) GROUP BY bin",
        {**params, "inner": [float(e) for e in edges[1:-1]]},
    ).to_pylist()
    hist = [0] * (len(edges) - 1)
    for row in counts:
        hist[int(row["bin"])] = int(row["c"])
    return FeatureProfile(
        name,
        "numeric",
        n,
        total - n,
        float(stats["lo"]),
        float(stats["hi"]),
        float(stats["mean"]),
        float(stats["std"]),
        tuple(float(q) for q in stats["q"]),
        tuple(float(e) for e in edges),
        tuple(hist),
    )


def _categorical_profile(store: Store, baseline_id: str, name: str, total: int) -> FeatureProfile:
    rows = store.query(
        "SELECT cat[{f:String}] AS v, count() AS c FROM baseline_rows "
        "WHERE baseline_id = {b:String} AND mapContains(cat, {f:String}) GROUP BY v ORDER BY v",
        {"b": baseline_id, "f": name},
    ).to_pylist()
    categories = {str(r["v"]): int(r["c"]) for r in rows}
    n = sum(categories.values())
    return FeatureProfile(name, "categorical", n, total - n, categories=categories)


def register_baseline(
    store: Store, model: str, source: Any, *, created_by: str = "", project: str = "default"
) -> Baseline:
    """Copy ``source`` (CSV/parquet path or data frame) into the store and profile it there."""
    if not model:
        raise BaselineError("model must not be empty")
    frame, where = load_frame(source)
    if frame.empty:
        raise BaselineError(f"baseline {where} has no rows")
    numeric, categorical = _split(frame)
    content_hash = hashlib.sha256(
        pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()
    ).hexdigest()
    baseline_id = uuid.uuid4().hex
    store.insert("baseline_rows", _rows_table(baseline_id, frame, numeric, categorical))
    total = len(frame)
    features = tuple(
        [_numeric_profile(store, baseline_id, name, total) for name in numeric]
        + [_categorical_profile(store, baseline_id, name, total) for name in categorical]
    )
    previous = store.query(
        "SELECT max(version) AS v FROM baselines WHERE project = {p:String} AND model = {m:String}",
        {"p": project, "m": model},
    ).to_pylist()
    version = int(previous[0]["v"] or 0) + 1 if previous else 1
    created_at = datetime.now(timezone.utc)
    baseline = Baseline(
        baseline_id, model, version, where, content_hash, total, created_by, created_at, features
    )
    schema = {name: "numeric" for name in numeric} | {name: "categorical" for name in categorical}
    store.insert(
        "baselines",
        pa.table(
            {
                "project": [project],
                "model": [model],
                "baseline_id": [baseline_id],
                "version": pa.array([version], pa.uint32()),
                "source": [where],
                "content_hash": [content_hash],
                "feature_schema": [json.dumps(schema)],
                "profile": [json.dumps([asdict(f) for f in features])],
                "row_count": pa.array([total], pa.uint64()),
                "created_by": [created_by],
                "created_at": pa.array([created_at], pa.timestamp("ms", tz="UTC")),
            }
        ),
    )
    return baseline


def _from_row(row: dict[str, Any]) -> Baseline:
    features = []
    for item in json.loads(row["profile"]):
        item["quantiles"] = tuple(item["quantiles"])
        item["edges"] = tuple(item["edges"])
        item["counts"] = tuple(item["counts"])
        features.append(FeatureProfile(**item))
    return Baseline(
        row["baseline_id"],
        row["model"],
        int(row["version"]),
        row["source"],
        row["content_hash"],
        int(row["row_count"]),
        row["created_by"],
        row["created_at"],
        tuple(features),
    )


def get_baseline(
    store: Store, model: str, version: int | None = None, project: str = "default"
) -> Baseline | None:
    """The model's baseline of ``version`` (default: the newest), or ``None``."""
    rows = store.query(
        "SELECT * FROM baselines WHERE project = {p:String} AND model = {m:String} "
        "AND ({v:UInt32} = 0 OR version = {v:UInt32}) ORDER BY version DESC LIMIT 1",
        {"p": project, "m": model, "v": version or 0},
    ).to_pylist()
    return _from_row(rows[0]) if rows else None


def list_baselines(
    store: Store, model: str | None = None, project: str = "default"
) -> list[Baseline]:
    """All baselines, newest version first per model."""
    rows = store.query(
        "SELECT * FROM baselines WHERE project = {p:String} "
        "AND ({m:String} = '' OR model = {m:String}) "
        "ORDER BY model, version DESC",
        {"p": project, "m": model or ""},
    ).to_pylist()
    return [_from_row(r) for r in rows]
