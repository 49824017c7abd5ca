"""Registering a baseline from a parquet or CSV file inside the embedded engine, without pandas.

The embedded engine reads local files itself (``file(path, format)``), so a baseline file given
by path is copied into ``baseline_values``, ``baseline_sorted`` and ``baseline_rows`` with
``INSERT ... SELECT`` statements and never becomes a data frame in this process (1M rows x 20
float features from Parquet: 290 MB over the idle process instead of 740 MB, and a little
faster; docs/detectors.md has the figures). The rows stored are exactly those the pandas path
(:func:`keelwatch.detectors.load_frame`) stores for the same file: which columns are features
and of what kind, parquet and CSV alike, is decided by :mod:`._file_reader` as pandas would
decide it. CSV text is parsed once, into a temporary table the per-feature statements read.

Row numbers are the engine's ``_row_number`` (the record's position in the file); with parallel
CSV parsing that counter drifts by one at chunk edges here, so CSV is parsed in one stream.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from keelwatch.store import EmbeddedStore, Store, StoreError, StoreUnavailable, check_identifier

from ._file_reader import (
    PANDAS_NA,
    TRUE,
    Column,
    FileError,
    FileReader,
    file_hash,
    plan_columns,
    sql_file,
)

__all__ = ["PANDAS_NA", "FileError", "FileRows", "copy_file", "file_hash", "sql_file"]


@dataclass(frozen=True)
class FileRows:
    """What :func:`copy_file` stored: the features by kind and the number of records."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    row_count: int


def _bind(expr: str, i: int) -> str:
    return expr.replace("{c:Identifier}", f"{{c{i}:Identifier}}")


def _stage_csv(reader: FileReader, baseline_id: str, columns: list[Column]) -> list[Column]:
    """Parse the CSV file once into a temporary table of typed columns; read that from now on.

    The text is parsed once (not once per feature), and the per-feature statements then read
    one column each as from a Parquet file. All features in one ``ARRAY JOIN`` insert instead
    took 10 s for 1M x 20 here: the engine sorts each interleaved block by the string key.
    """
    stage = check_identifier(f"baseline_stage_{baseline_id}")
    fields = [f"v{i}" for i in range(len(columns))]
    types = ", ".join(
        f"{field} {'Float64' if c.kind == 'numeric' else 'Nullable(String)'}"
        for field, c in zip(fields, columns, strict=True)
    )
    reader.command(
        f"CREATE TEMPORARY TABLE {stage} (row UInt64, {types}) ENGINE = MergeTree ORDER BY tuple()"
    )
    values = ", ".join(_bind(c.expr, i) for i, c in enumerate(columns))
    reader.stage = stage  # dropped by the caller from now on, whatever happens
    reader.command(
        f"INSERT INTO {stage} SETTINGS optimize_on_insert = 0 "
        f"SELECT _row_number, {values} FROM {reader.file}{reader.settings}, "
        "min_insert_block_size_rows = 131072",
        _CONSTANTS,
        [c.field for c in columns],
    )
    return [
        Column(c.name, c.kind, "{c:Identifier}", field)
        for field, c in zip(fields, columns, strict=True)
    ]


def _insert_values(reader: FileReader, baseline_id: str, column: Column) -> None:
    """One numeric feature's finite values with their record numbers, in long form.

    One statement per feature, reading only that column, the insert holding one column at a
    time. All 20 features of 1M rows in one statement (``ARRAY JOIN`` of each record's values)
    took longer and over twice the memory.
    """
    reader.command(
        "INSERT INTO baseline_values (baseline_id, feature, row, value) "
        "SETTINGS optimize_on_insert = 0 "
        "SELECT {b:String}, {f:String}, row, value FROM ("
        f"SELECT {reader.row} AS row, {_bind(column.expr, 0)} AS value FROM {reader.source}) "
        f"WHERE isFinite(value){reader.read_settings}",
        {"b": baseline_id, "f": column.name},
        [column.field],
    )


def _insert_sorted(reader: FileReader, baseline_id: str, column: Column) -> None:
    """One numeric feature's finite values, sorted, as its one ``baseline_sorted`` row.

    Sorted from the source's column, three times faster here than reading the feature back
    from ``baseline_values`` (whose ``baseline_id`` strings are decompressed to filter); the
    same finite values. Without GROUP BY the aggregate yields a row even for a feature with no
    finite value: the empty array the pandas path stores too. One feature per statement bounds
    memory to one column.
    """
    reader.command(
        "INSERT INTO baseline_sorted (baseline_id, feature, sorted_values) "
        "SELECT {b:String}, {f:String}, arraySort(groupArray(value)) FROM "
        f"(SELECT {_bind(column.expr, 0)} AS value FROM {reader.source}) "
        f"WHERE isFinite(value){reader.read_settings}",
        {"b": baseline_id, "f": column.name},
        [column.field],
    )


def _insert_rows(reader: FileReader, baseline_id: str, categorical: list[Column]) -> None:
    """One ``baseline_rows`` row per record: its non-null categorical values, in column order."""
    values = ", ".join(_bind(c.expr, i) for i, c in enumerate(categorical))
    reader.command(
        "INSERT INTO baseline_rows (baseline_id, row, cat) SETTINGS optimize_on_insert = 0 "
        "SELECT {b:String}, row, mapFromArrays(arrayMap(t -> t.1, kv), "
        "arrayMap(t -> assumeNotNull(t.2), kv)) FROM ("
        f"SELECT {reader.row} AS row, "
        f"arrayFilter(t -> isNotNull(t.2), arrayZip({{names:Array(String)}}, [{values}])) AS kv "
        f"FROM {reader.source}){reader.read_settings}",
        {"b": baseline_id, "names": [c.name for c in categorical], **_CONSTANTS},
        [c.field for c in categorical],
    )


_CONSTANTS = {"na": list(PANDAS_NA), "true": list(TRUE)}


def _discard(store: EmbeddedStore, baseline_id: str) -> None:
    """Drop what a failed registration already stored (nothing refers to it yet)."""
    for table in ("baseline_values", "baseline_sorted", "baseline_rows"):
        with contextlib.suppress(StoreError):
            store.command(
                f"DELETE FROM {table} WHERE baseline_id = {{b:String}}", {"b": baseline_id}
            )


def copy_file(store: Store, baseline_id: str, path: Path, fmt: str) -> FileRows | None:
    """Copy the file's features into the baseline tables; None if pandas must read it.

    Raises:
        FileError: the file is unreadable, corrupt, empty, or has unusable column names.
    """
    if not isinstance(store, EmbeddedStore):
        return None
    if path.stat().st_size == 0:
        raise FileError("the file is empty")
    reader = FileReader(store, path, fmt)
    try:
        plan = plan_columns(reader)
    except StoreUnavailable:
        raise
    except StoreError as exc:
        raise FileError(str(exc)) from exc
    if plan is None:
        return None
    columns, total = plan
    numeric = [c for c in columns if c.kind == "numeric"]
    categorical = [c for c in columns if c.kind == "categorical"]
    rows = FileRows(tuple(c.name for c in numeric), tuple(c.name for c in categorical), total)
    if total == 0:
        return rows
    try:
        if fmt != "Parquet":
            staged = _stage_csv(reader, baseline_id, numeric + categorical)
            numeric, categorical = staged[: len(numeric)], staged[len(numeric) :]
        for column in numeric:
            _insert_values(reader, baseline_id, column)
            _insert_sorted(reader, baseline_id, column)
        if categorical:
            _insert_rows(reader, baseline_id, categorical)
    except StoreUnavailable:
        raise
    except StoreError as exc:
        _discard(store, baseline_id)
        raise FileError(str(exc)) from exc
    finally:
        if reader.stage:
            with contextlib.suppress(StoreError):
                store.command(f"DROP TEMPORARY TABLE IF EXISTS {reader.stage}")
    return rows
