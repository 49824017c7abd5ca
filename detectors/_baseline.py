"""Baselines: the reference data a model is compared against, and its stored profile.

Registering a baseline copies it into the store once: numeric values into ``baseline_values`` (one
row per finite value and feature, with the source row number, so a detector reads one feature as
one primary-key range) and, sorted, into ``baseline_sorted`` (one array per feature, migration 7),
categorical values into ``baseline_rows`` (one map per record; baselines registered before
migration 2 also kept numeric values there) and computes the profile there in SQL: per numeric
feature the count, nulls, min/max, mean, standard deviation (population, ddof=0), quantiles, a
capped distinct count and Sturges bin edges with their counts; per categorical feature the
category counts. Baselines are versioned per model and carry lineage (source, content hash,
feature schema, who registered them and when).

A parquet or CSV path given to the embedded store is copied by the engine itself
(:mod:`._baseline_file`), never loaded into pandas; other sources, and every source of a
ClickHouse server (which cannot see this machine's files), go through a pandas data frame.
Both store the same rows. The content hash is the sha256 of the file's bytes for a path,
whichever way it is read, and of pandas' row hashes for a data frame.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from keelwatch.store import Store

from ._baseline_file import FileError, FileRows, copy_file, file_hash, sql_file
from ._binning import sturges_edges
from ._profile import FeatureProfile, categorical_profile, numeric_profiles

if TYPE_CHECKING:  # pandas loads when a baseline is read into a frame, not with the detectors
    import pandas as pd

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


class BaselineError(ValueError):
    """A baseline source is missing, unreadable or unusable."""


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


def load_frame(source: Any) -> tuple[pd.DataFrame, str]:
    """A DataFrame and a description of where it came from, from a path or a data frame."""
    import pandas as pd

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
    import pandas as pd

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
    # Keys as a dictionary cast to strings: no Python string per cell.
    columns = np.broadcast_to(np.arange(len(names), dtype=np.int32), values.shape)[valid]
    keys = pa.DictionaryArray.from_arrays(columns, pa.array(names, pa.string())).cast(pa.string())
    return pa.MapArray.from_arrays(pa.array(offsets), keys, pa.array(values[valid], item_type))


def _category_strings(column: pd.Series) -> np.ndarray:
    """Each value as the text stored; booleans as ``"true"``/``"false"``, as the SDK sends them.

    Nulls become placeholders the caller masks out; pandas keeps booleans with nulls as
    ``object`` (parquet, CSV) or ``boolean`` columns, whose values must not become "True".
    """
    import pandas as pd

    if pd.api.types.is_bool_dtype(column.dtype):
        flags = column.fillna(False).to_numpy(dtype=bool)
        return np.where(flags, "true", "false").astype(object)
    texts = column.astype(str).to_numpy(dtype=object)
    if column.dtype == object:
        values = column.to_numpy(dtype=object)
        is_bool = np.fromiter(
            (isinstance(v, (bool, np.bool_)) for v in values), dtype=bool, count=len(values)
        )
        if is_bool.any():
            texts[is_bool] = np.where(values[is_bool].astype(bool), "true", "false")
    return texts


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


def _values_table(baseline_id: str, name: str, column: pd.Series) -> pa.Table:
    """One numeric feature's finite values in long form for ``baseline_values``."""
    values = column.to_numpy(dtype=float, na_value=np.nan)
    rows = np.flatnonzero(np.isfinite(values))
    return pa.table(
        {
            "baseline_id": pa.DictionaryArray.from_arrays(
                np.zeros(rows.size, dtype=np.int32), pa.array([baseline_id])
            ),
            "feature": pa.DictionaryArray.from_arrays(
                np.zeros(rows.size, dtype=np.int32), pa.array([name])
            ),
            "row": pa.array(rows.astype(np.uint64)),
            "value": pa.array(values[rows]),
        }
    )


def _sorted_table(baseline_id: str, name: str, column: pd.Series) -> pa.Table:
    """One numeric feature's finite values, sorted, as one row of ``baseline_sorted``."""
    values = column.to_numpy(dtype=float, na_value=np.nan)
    values = np.sort(values[np.isfinite(values)])
    return pa.table(
        {
            "baseline_id": [baseline_id],
            "feature": [name],
            "sorted_values": pa.ListArray.from_arrays(
                pa.array(np.array([0, values.size], dtype=np.int32)), pa.array(values)
            ),
        }
    )


def _copy_file(store: Store, baseline_id: str, source: Any) -> FileRows | None:
    """Copy a parquet/CSV file inside the embedded engine; None where pandas must read it."""
    target = sql_file(store, source)
    if target is None:
        return None
    path, fmt = target
    try:
        copied = copy_file(store, baseline_id, path, fmt)
    except FileError as exc:
        raise BaselineError(f"cannot read baseline file {Path(source)}: {exc}") from exc
    if copied is not None and copied.row_count == 0:
        raise BaselineError(f"baseline {Path(source)} has no rows")
    return copied


def _copy_frame(
    store: Store, baseline_id: str, source: Any
) -> tuple[list[str], list[str], int, str, str]:
    """Read ``source`` into pandas and copy it: features by kind, rows, source and hash."""
    import pandas as pd

    frame, where = load_frame(source)
    if frame.empty:
        raise BaselineError(f"baseline {where} has no rows")
    numeric, categorical = _split(frame)
    if isinstance(source, (str, os.PathLike)):
        content_hash = file_hash(Path(source))  # as a file read by the engine
    else:
        content_hash = hashlib.sha256(
            pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()
        ).hexdigest()
    # Numeric values go to baseline_values (one insert per feature keeps memory at one column),
    # and sorted once to baseline_sorted for the exact ECDF detectors; baseline_rows keeps the
    # categorical values of each row.
    for name in numeric:
        store.insert("baseline_values", _values_table(baseline_id, name, frame[name]))
        store.insert("baseline_sorted", _sorted_table(baseline_id, name, frame[name]))
    if categorical:
        store.insert("baseline_rows", _rows_table(baseline_id, frame, [], categorical))
    return numeric, categorical, len(frame), where, content_hash


def register_baseline(
    store: Store, model: str, source: Any, *, created_by: str = "", project: str = "default"
) -> Baseline:
    """Copy ``source`` (CSV/parquet path or data frame) into the store and profile it there."""
    if not model:
        raise BaselineError("model must not be empty")
    baseline_id = uuid.uuid4().hex
    copied = _copy_file(store, baseline_id, source)
    if copied is not None:
        numeric, categorical = list(copied.numeric), list(copied.categorical)
        total, where = copied.row_count, str(Path(source))
        content_hash = file_hash(Path(source))
    else:
        numeric, categorical, total, where, content_hash = _copy_frame(store, baseline_id, source)
    profiles = numeric_profiles(store, baseline_id, numeric, total)
    features = tuple(
        [profiles[name] for name in numeric]
        + [categorical_profile(store, baseline_id, name, total) for name in categorical]
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
