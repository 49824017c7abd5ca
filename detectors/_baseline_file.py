"""Registering a baseline from a parquet or CSV file inside the embedded engine, without pandas.

The embedded engine reads local files itself (``file(path, format)``), so a baseline file given
by path is copied into ``baseline_values``, ``baseline_sorted`` and ``baseline_rows`` with
``INSERT ... SELECT`` statements and never becomes a data frame in this process (1M rows x 20
float features from Parquet: 290 MB over the idle process instead of 740 MB, and a little
faster; docs/detectors.md has the figures). The rows stored are exactly those the pandas path
(:func:`keelwatch.detectors.load_frame`) stores for the same file:

- Parquet: numeric columns (integers, floats) are numeric features, ``Bool`` and ``String``
  (plain or ``LowCardinality``) columns categorical ones; a file with any other column type
  (dates, decimals, lists, ...) is left to the pandas path, whose conversions of those types
  this module does not reproduce. Columns pandas restores as the index (``pandas`` schema
  metadata) are not features, as with ``pd.read_parquet``.
- CSV: every field is read as text and each column classified as pandas' ``read_csv`` does:
  pandas' default NA spellings and empty fields are nulls; a column whose other values all parse
  as numbers is numeric, one whose values are all ``True``/``False`` spellings is boolean, any
  other is categorical with the text as it is. The text is parsed once, into a temporary table
  the per-feature statements read.

Row numbers are the engine's ``_row_number`` (the record's position in the file); with parallel
CSV parsing that counter drifts by one at chunk edges here, so CSV is parsed in one stream.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.ipc as ipc

from keelwatch.store import EmbeddedStore, Store, StoreError, StoreUnavailable, check_identifier
from keelwatch.store._params import format_param

__all__ = ["PANDAS_NA", "FileError", "FileRows", "copy_file", "file_hash", "sql_file"]

_FORMATS = {".parquet": "Parquet", ".pq": "Parquet", ".csv": "CSVWithNames", ".txt": "CSVWithNames"}

# Constant settings of each read (never user input). CSV: spaces kept and single quotes literal
# as in pandas, trailing blank lines skipped as pandas does, one parsing stream so that
# ``_row_number`` is exact.
_SETTINGS = {
    "Parquet": " SETTINGS storage_file_read_method = 'pread'",
    "CSVWithNames": " SETTINGS input_format_csv_trim_whitespaces = 0, "
    "format_csv_allow_single_quotes = 0, input_format_csv_skip_trailing_empty_lines = 1, "
    "input_format_parallel_parsing = 0, storage_file_read_method = 'pread'",
}

# ``file()`` expands these in a path as a glob; such paths go to the pandas path instead.
_GLOB = re.compile(r"[*?{}]")

_NUMERIC = re.compile(r"^(U?Int(8|16|32|64|128|256)|Float(32|64)|BFloat16)$")
_TEXT = re.compile(r"^(String|Bool)$")
_WRAPPER = re.compile(r"^(Nullable|LowCardinality)\((.*)\)$")

#: pandas' default NA spellings for ``read_csv`` (``keep_default_na=True``), and the empty field.
PANDAS_NA = (
    "",
    "#N/A",
    "#N/A N/A",
    "#NA",
    "-1.#IND",
    "-1.#QNAN",
    "-NaN",
    "-nan",
    "1.#IND",
    "1.#QNAN",
    "<NA>",
    "N/A",
    "NA",
    "NULL",
    "NaN",
    "None",
    "n/a",
    "nan",
    "null",
)
_TRUE = ("True", "TRUE", "true")
_FALSE = ("False", "FALSE", "false")


class FileError(Exception):
    """The file cannot be used; the caller names the file."""


@dataclass(frozen=True)
class FileRows:
    """What :func:`copy_file` stored: the features by kind and the number of records."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    row_count: int


@dataclass(frozen=True)
class _Column:
    name: str
    kind: str  # "numeric" or "categorical"
    #: The column's value as ``Float64`` (numeric) or ``Nullable(String)`` (categorical), over
    #: the column bound as the identifier parameter ``{c:Identifier}``.
    expr: str
    #: The column's name where it is read from (the file, or the CSV staging table).
    field: str


def sql_file(store: Store, source: Any) -> tuple[Path, str] | None:
    """The resolved path and engine format when ``store`` can read ``source`` itself, else None.

    Only the embedded store runs in this process and sees its files; a ClickHouse server does
    not, and data frames, polars and Arrow sources are not files.
    """
    if not isinstance(store, EmbeddedStore) or not isinstance(source, (str, os.PathLike)):
        return None
    path = Path(source)
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None or not path.is_file():
        return None  # the pandas path reports it as it always has
    resolved = path.resolve()
    if _GLOB.search(str(resolved)):
        return None
    return resolved, fmt


def file_hash(path: Path) -> str:
    """sha256 of the file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class _Reader:
    """Statements over one file. The path is a bound ``{path:String}`` parameter and column
    names ``{cN:Identifier}`` parameters, so neither is ever part of the SQL text; the format
    and settings come from this module's constants."""

    def __init__(self, store: EmbeddedStore, path: Path, fmt: str) -> None:
        self.store = store
        self.path = path
        self.fmt = fmt
        self.settings = _SETTINGS[fmt]
        #: The CSV columns as ``file()``'s structure argument, once known.
        self.structure = ""
        #: The temporary table a CSV file was parsed into, once it was.
        self.stage = ""

    @property
    def source(self) -> str:
        """What statements read: the staging table once there is one, else the file."""
        return self.stage or self.file

    @property
    def file(self) -> str:
        if self.structure:
            return f"file({{path:String}}, '{self.fmt}', {{structure:String}})"
        return f"file({{path:String}}, '{self.fmt}')"

    @property
    def row(self) -> str:
        """The record's 0-based position in the file."""
        return "row" if self.stage else "_row_number"

    @property
    def read_settings(self) -> str:
        return "" if self.stage else self.settings

    def _params(self, params: Mapping[str, Any], columns: Sequence[str] = ()) -> dict[str, str]:
        bound = {name: format_param(value) for name, value in params.items()}
        bound["path"] = format_param(str(self.path))
        if self.structure:
            bound["structure"] = format_param(self.structure)
        # Identifier parameters are taken as they are, not in the escaped text form.
        bound.update({f"c{i}": name for i, name in enumerate(columns)})
        return bound

    def query(
        self, sql: str, params: Mapping[str, Any] | None = None, columns: Sequence[str] = ()
    ) -> list[dict[str, Any]]:
        data = self.store.raw(sql, "ArrowStream", self._params(params or {}, columns))
        return ipc.open_stream(pa.py_buffer(data)).read_all().to_pylist() if data else []

    def command(
        self, sql: str, params: Mapping[str, Any] | None = None, columns: Sequence[str] = ()
    ) -> None:
        self.store.raw(sql, "TabSeparated", self._params(params or {}, columns))


def _base_type(name: str) -> str:
    while match := _WRAPPER.match(name):
        name = match.group(2)
    return name


def _parquet_index_columns(path: Path) -> set[str]:
    """Columns ``pd.read_parquet`` turns into the index rather than data columns."""
    import pyarrow.parquet as pq

    try:
        metadata = pq.read_schema(path).pandas_metadata or {}
    except Exception as exc:
        raise FileError(str(exc)) from exc
    return {c for c in metadata.get("index_columns", []) if isinstance(c, str)}


def _csv_header(path: Path) -> list[str]:
    import csv

    with path.open(newline="", encoding="utf-8-sig", errors="replace") as handle:
        return next(csv.reader(handle), [])


def _check_names(names: Sequence[str]) -> None:
    seen = set()
    for position, name in enumerate(names, 1):
        if not name:
            raise FileError(f"column {position} has no name (names must be non-empty strings)")
        if name in seen:
            raise FileError(f"column name {name!r} appears more than once")
        seen.add(name)


def _plan(reader: _Reader) -> tuple[list[_Column], int] | None:
    """The features of the file and its record count, or None if pandas must read it."""
    if reader.fmt == "Parquet":
        return _plan_parquet(reader)
    # CSV: the header read here, every column as text. The engine's own schema inference looks
    # at the first 25,000 records only (pandas at all of them) and rejects trailing blank lines.
    header = _csv_header(reader.path)
    if not header:
        raise FileError("no columns")
    _check_names(header)
    if len(header) == 1:
        return None  # pandas skips blank lines, which the engine reads as null records
    reader.structure = ", ".join(f"{_quoted(name)} Nullable(String)" for name in header)
    try:
        return _classify_csv(reader, header)
    except StoreUnavailable:
        raise
    except StoreError:
        return None  # e.g. blank lines inside the file: pandas reads it, or says why not


def _quoted(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def _plan_parquet(reader: _Reader) -> tuple[list[_Column], int] | None:
    index = _parquet_index_columns(reader.path)
    described = [
        (str(r["name"]), str(r["type"]))
        for r in reader.query(f"DESCRIBE {reader.source}")
        if str(r["name"]) not in index
    ]
    _check_names([name for name, _ in described])
    columns = []
    for name, kind in described:
        base = _base_type(kind)
        if _NUMERIC.match(base):
            columns.append(_Column(name, "numeric", "ifNull(toFloat64({c:Identifier}), nan)", name))
        elif _TEXT.match(base):
            # Bool renders as 'true'/'false', what the pandas path stores for booleans.
            columns.append(
                _Column(name, "categorical", "toNullable(toString({c:Identifier}))", name)
            )
        else:
            return None
    if not columns:
        raise FileError("no columns")
    total = reader.query(f"SELECT count() AS n FROM {reader.source}")
    return columns, int(total[0]["n"])


def _classify_csv(reader: _Reader, names: list[str]) -> tuple[list[_Column], int]:
    """Each CSV column's kind, decided over all its values in one scan, as ``read_csv`` does."""
    parts = ["count() AS n"]
    for i in range(len(names)):
        value = f"{{c{i}:Identifier}}"
        present = f"{value} IS NOT NULL AND {value} NOT IN {{na:Array(String)}}"
        parts += [
            f"countIf({present}) AS present{i}",
            f"countIf({present} AND {value} IN {{bools:Array(String)}}) AS bools{i}",
            f"countIf({present} AND toFloat64OrNull(trimBoth({value})) IS NULL) AS text{i}",
        ]
    row = reader.query(
        f"SELECT {', '.join(parts)} FROM {reader.source}{reader.settings}",
        {"na": list(PANDAS_NA), "bools": list(_TRUE + _FALSE)},
        names,
    )[0]
    columns = []
    for i, name in enumerate(names):
        present = "{c:Identifier} NOT IN {na:Array(String)}"
        if row[f"text{i}"] == 0:  # all numbers, or all nulls (pandas: float64 of NaN)
            expr = "ifNull(toFloat64OrNull(trimBoth({c:Identifier})), nan)"
            columns.append(_Column(name, "numeric", expr, name))
        elif row[f"bools{i}"] == row[f"present{i}"]:
            expr = (
                f"if({present}, if({{c:Identifier}} IN {{true:Array(String)}}, 'true', 'false'), "
                "NULL)"
            )
            columns.append(_Column(name, "categorical", expr, name))
        else:
            columns.append(
                _Column(name, "categorical", f"if({present}, {{c:Identifier}}, NULL)", name)
            )
    return columns, int(row["n"])


def _bind(expr: str, i: int) -> str:
    return expr.replace("{c:Identifier}", f"{{c{i}:Identifier}}")


def _stage_csv(reader: _Reader, baseline_id: str, columns: list[_Column]) -> list[_Column]:
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
        _Column(c.name, c.kind, "{c:Identifier}", field)
        for field, c in zip(fields, columns, strict=True)
    ]


def _insert_values(reader: _Reader, baseline_id: str, column: _Column) -> None:
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


def _insert_sorted(reader: _Reader, baseline_id: str, column: _Column) -> None:
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


def _insert_rows(reader: _Reader, baseline_id: str, categorical: list[_Column]) -> None:
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


_CONSTANTS = {"na": list(PANDAS_NA), "true": list(_TRUE)}


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
    reader = _Reader(store, path, fmt)
    try:
        plan = _plan(reader)
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
