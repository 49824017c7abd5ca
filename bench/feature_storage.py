"""How to store features: a Map column, typed wide columns, or ClickHouse's JSON type.

Run: ``.venv/bin/python bench/feature_storage.py [--rows 1000000] [--features 20]``

For each layout, in one embedded (chDB) store: insert the same rows from Arrow (timed, with the
Python-side conversion the layout needs timed separately), the bytes on disk after a final merge,
and two drift aggregations over the rows: the 10-bin histogram of one feature against fixed
edges (what a detector runs per feature), and the same for all features in one pass. The Map
layout is the baseline the others are compared with (ratio < 1 is faster/smaller).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

from keelwatch.store import EmbeddedStore

PARAMS = {"edges": [float(x) for x in np.linspace(-2.0, 2.0, 9)]}


def _ts(n: int) -> pa.Array:
    start = int((time.time() - 3600) * 1e6)
    return pa.array(start + np.arange(n, dtype=np.int64) * 1000).cast(pa.timestamp("us", tz="UTC"))


_ONE = (
    "SELECT arrayCount(e -> e <= x, {{edges:Array(Float64)}}) AS bin, count() AS c "
    "FROM (SELECT {expr} AS x FROM {table} WHERE model = 'm') WHERE x IS NOT NULL GROUP BY bin"
)
_ALL = (
    "SELECT p.1 AS f, arrayCount(e -> e <= p.2, {{edges:Array(Float64)}}) AS bin, count() AS c "
    "FROM {table} ARRAY JOIN [{pairs}] AS p WHERE model = 'm' AND p.2 IS NOT NULL GROUP BY f, bin"
)
_PREFIX = "CREATE TABLE {table} (model LowCardinality(String), ts DateTime64(6, 'UTC'), "
_SUFFIX = ") ENGINE = MergeTree ORDER BY (model, ts)"


def _queries(table: str, columns: str, expr: Callable[[int], str], k: int) -> tuple[str, ...]:
    """DDL, one feature's histogram, every feature's histograms (same SQL shape per layout)."""
    pairs = ", ".join(f"('f{i}', {expr(i)})" for i in range(k))
    return (
        _PREFIX.format(table=table) + columns + _SUFFIX,
        _ONE.format(expr=expr(0), table=table),
        _ALL.format(table=table, pairs=pairs),
    )


def _schema_map(k: int) -> tuple[str, ...]:
    def expr(i: int) -> str:
        return f"if(mapContains(num, 'f{i}'), num['f{i}'], NULL)"

    return _queries("t_map", "num Map(LowCardinality(String), Float64)", expr, k)


def _schema_wide(k: int) -> tuple[str, ...]:
    columns = ", ".join(f"f{i} Nullable(Float64)" for i in range(k))
    return _queries("t_wide", columns, lambda i: f"f{i}", k)


def _schema_json(k: int) -> tuple[str, ...]:
    return _queries("t_json", "features JSON", lambda i: f"features.f{i}::Nullable(Float64)", k)


def _data_map(values: np.ndarray) -> pa.Table:
    n, k = values.shape
    offsets = pa.array(np.arange(n + 1, dtype=np.int32) * k)
    keys = pa.array(np.tile(np.array([f"f{i}" for i in range(k)], dtype=object), n), pa.string())
    num = pa.MapArray.from_arrays(offsets, keys, pa.array(values.ravel()))
    return pa.table({"model": ["m"] * n, "ts": _ts(n), "num": num})


def _data_wide(values: np.ndarray) -> pa.Table:
    n, k = values.shape
    columns: dict[str, Any] = {"model": ["m"] * n, "ts": _ts(n)}
    columns.update({f"f{i}": values[:, i] for i in range(k)})
    return pa.table(columns)


def _data_json(values: np.ndarray) -> pa.Table:
    n, k = values.shape
    names = [f"f{i}" for i in range(k)]
    text = [orjson.dumps(dict(zip(names, row.tolist(), strict=True))).decode() for row in values]
    return pa.table({"model": ["m"] * n, "ts": _ts(n), "features": text})


LAYOUTS: dict[
    str, tuple[Callable[[int], tuple[str, str, str]], Callable[[np.ndarray], pa.Table]]
] = {
    "map": (_schema_map, _data_map),
    "wide": (_schema_wide, _data_wide),
    "json": (_schema_json, _data_json),
}


def _timed(fn: Callable[[], Any], repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run(rows: int, features: int, chunk: int) -> dict[str, dict[str, float]]:
    values = np.random.default_rng(7).normal(size=(rows, features))
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        store = EmbeddedStore(tmp)
        try:
            for name, (schema, build) in LAYOUTS.items():
                ddl, one, many = schema(features)
                store.command(ddl)
                table_name = f"t_{name}"
                convert = insert = 0.0
                for start in range(0, rows, chunk):
                    t0 = time.perf_counter()
                    data = build(values[start : start + chunk])
                    t1 = time.perf_counter()
                    store.insert(table_name, data)
                    t2 = time.perf_counter()
                    convert, insert = convert + t1 - t0, insert + t2 - t1
                store.command(f"OPTIMIZE TABLE {table_name} FINAL")
                size = (
                    store.query(
                        "SELECT sum(bytes_on_disk) AS b FROM system.parts "
                        "WHERE active AND table = {t:String}",
                        {"t": table_name},
                    )
                    .column("b")[0]
                    .as_py()
                )
                results[name] = {
                    "convert_s": convert,
                    "insert_s": insert,
                    "rows_per_s": rows / insert,
                    "mib": size / 2**20,
                    "one_feature_ms": 1e3 * _timed(lambda q=one: store.query(q, PARAMS)),
                    "all_features_ms": 1e3 * _timed(lambda q=many: store.query(q, PARAMS), 3),
                }
                check = store.query(one, PARAMS).column("c").to_pylist()
                assert sum(check) == rows, (name, sum(check))
        finally:
            store.close()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--chunk", type=int, default=100_000, help="rows per insert")
    args = parser.parse_args(argv)
    results = run(args.rows, args.features, args.chunk)
    base = results["map"]
    print(f"{args.rows:,} rows x {args.features} numeric features, inserts of {args.chunk:,} rows")
    print(
        f"{'layout':6} {'convert s':>9} {'insert s':>9} {'rows/s':>11} {'MiB':>8} "
        f"{'1 feat ms':>9} {'all ms':>8}   ratios vs map (insert, size, 1 feat, all)"
    )
    for name, r in results.items():
        print(
            f"{name:6} {r['convert_s']:9.2f} {r['insert_s']:9.2f} {r['rows_per_s']:11,.0f} "
            f"{r['mib']:8.1f} {r['one_feature_ms']:9.1f} {r['all_features_ms']:8.1f}   "
            f"{r['insert_s'] / base['insert_s']:.2f} {r['mib'] / base['mib']:.2f} "
            f"{r['one_feature_ms'] / base['one_feature_ms']:.2f} "
            f"{r['all_features_ms'] / base['all_features_ms']:.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
