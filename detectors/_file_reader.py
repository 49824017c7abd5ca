"""What a parquet or CSV baseline file holds, as the embedded engine reads it: its columns, their
kind (numeric or categorical) and the SQL expression that reads each, and its record count.

Parquet: numeric columns (integers, floats) are numeric features, ``Bool`` and ``String`` (plain
or ``LowCardinality``) columns categorical ones; any other column type sends the file to the
pandas path; columns pandas restores as the index are not features. CSV: the header is read here,
every field as text, and each column classified over all its values as pandas' ``read_csv``
does (default NA spellings and empty fields are nulls; all numbers: numeric; all ``True``/
``False`` spellings: boolean; otherwise categorical text). :mod:`._baseline_file` copies the rows.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.ipc as ipc

from keelwatch.store import EmbeddedStore, Store, StoreError, StoreUnavailable
from keelwatch.store._params import format_param

__all__ = [
    "FALSE",
    "PANDAS_NA",
    "TRUE",
    "Column",
    "FileError",
    "FileReader",
    "file_hash",
    "plan_columns",
    "quoted",
    "sql_file",
]

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
TRUE = ("True", "TRUE", "true")
FALSE = ("False", "FALSE", "false")


class FileError(Exception):
    """The file cannot be used; the caller names the file."""


@dataclass(frozen=True)
class Column:
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


class FileReader:
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


def plan_columns(reader: FileReader) -> tuple[list[Column], int] | None:
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
    reader.structure = ", ".join(f"{quoted(name)} Nullable(String)" for name in header)
    try:
        return _classify_csv(reader, header)
    except StoreUnavailable:
        raise
    except StoreError:
        return None  # e.g. blank lines inside the file: pandas reads it, or says why not


def quoted(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def _plan_parquet(reader: FileReader) -> tuple[list[Column], int] | None:
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
            columns.append(Column(name, "numeric", "ifNull(toFloat64({c:Identifier}), nan)", name))
        elif _TEXT.match(base):
            # Bool renders as 'true'/'false', what the pandas path stores for booleans.
            columns.append(
                Column(name, "categorical", "toNullable(toString({c:Identifier}))", name)
            )
        else:
            return None
    if not columns:
        raise FileError("no columns")
    total = reader.query(f"SELECT count() AS n FROM {reader.source}")
    return columns, int(total[0]["n"])


def _classify_csv(reader: FileReader, names: list[str]) -> tuple[list[Column], int]:
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
        {"na": list(PANDAS_NA), "bools": list(TRUE + FALSE)},
        names,
    )[0]
    columns = []
    for i, name in enumerate(names):
        present = "{c:Identifier} NOT IN {na:Array(String)}"
        if row[f"text{i}"] == 0:  # all numbers, or all nulls (pandas: float64 of NaN)
            expr = "ifNull(toFloat64OrNull(trimBoth({c:Identifier})), nan)"
            columns.append(Column(name, "numeric", expr, name))
        elif row[f"bools{i}"] == row[f"present{i}"]:
            expr = (
                f"if({present}, if({{c:Identifier}} IN {{true:Array(String)}}, 'true', 'false'), "
                "NULL)"
            )
            columns.append(Column(name, "categorical", expr, name))
        else:
            columns.append(
                Column(name, "categorical", f"if({present}, {{c:Identifier}}, NULL)", name)
            )
    return columns, int(row["n"])
