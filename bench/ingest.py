"""Ingest throughput of the collector server against direct inserts, and drift query latency.

Run: ``.venv/bin/python bench/ingest.py [--batches 600] [--clients 8] [--rows 2000000]``

In one run:

1. **direct**: Arrow tables of predictions inserted into an embedded (chDB) store in this process,
   in batches of ``--batch`` records (the same size the clients send) and of 100,000 records (the
   engine's limit here). This is the baseline.
2. **server over HTTP**: ``keelwatch serve``'s app in a subprocess (uvicorn, embedded store, no
   keys, loopback); this process is the client, ``--clients`` threads posting ``--batches``
   batches of ``--batch`` records x ``--features`` numeric features, once as JSON and once as
   Arrow IPC streams, over ``http.client`` keep-alive connections (the load generator shares the
   two cores with the server: httpx cost it ~9 us per record, ``http.client`` ~0.5).
   Reported: predictions/s, the ratio to direct inserts, and the CPU time per record of the
   server process (all threads, from ``/proc``, including the merges of the 2 s after the run)
   and of this client process: the steadier figures on a shared machine.
3. **SDK end to end**: ``--sdk-calls`` calls of a ``@monitor`` function from one thread as fast
   as it goes, to the same server, until ``flush()`` returns; stored rows counted through the
   server's ClickHouse endpoint.
4. **drift query**: ``--rows`` predictions over 4 models and 2 days inserted directly, then the
   latency of one-day, one-model drift aggregations (a 10-bin histogram of one feature, and of
   every feature) with and without ``FINAL``.

Goals: >= 100,000 predictions/s over HTTP, and >= 1/5 of the direct rate.
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.ipc as ipc

from keelwatch.collector.server._arrow_ingest import parse_arrow
from keelwatch.store import EmbeddedStore, migrate

ARROW = "application/vnd.apache.arrow.stream"
SERVER = r"""
import socket, sys
import uvicorn
from keelwatch.collector.server import ServerConfig, create_app
sock = socket.socket()
sock.bind(("127.0.0.1", 0))
print(sock.getsockname()[1], flush=True)
config = ServerConfig(data_dir=sys.argv[1], detect_interval_s=0)
uvicorn.Server(uvicorn.Config(create_app(config), log_level="warning")).run(sockets=[sock])
"""


def columns(n: int, features: int, prefix: str, now: float, rng: np.random.Generator) -> pa.Table:
    data: dict[str, Any] = {
        "prediction_id": [f"{prefix}-{i}" for i in range(n)],
        "model": ["churn"] * n,
        "version": ["v1"] * n,
        "ts": now - rng.uniform(0, 60, n),
        "latency_ms": rng.exponential(5.0, n),
    }
    for j in range(features):
        data[f"features.f{j}"] = rng.normal(size=n)
    data["output.value"] = rng.uniform(size=n)
    return pa.table(data)


def arrow_body(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def json_body(table: pa.Table, features: int) -> bytes:
    rows = table.to_pylist()
    records = [
        {
            "prediction_id": r["prediction_id"],
            "model": r["model"],
            "version": r["version"],
            "ts": r["ts"],
            "latency_ms": r["latency_ms"],
            "features": {f"f{j}": r[f"features.f{j}"] for j in range(features)},
            "output": {"value": r["output.value"]},
        }
        for r in rows
    ]
    return orjson.dumps({"records": records})


def direct(tables: list[pa.Table], big: int) -> dict[str, float]:
    """Rows/s of direct inserts at the client batch size and in ``big``-row batches."""
    with tempfile.TemporaryDirectory() as tmp:
        store = EmbeddedStore(tmp)
        try:
            migrate(store)
            now = time.time()
            stored = [parse_arrow("predictions", arrow_body(t), "bench", now).table for t in tables]
            start = time.perf_counter()
            for i, table in enumerate(stored):
                store.insert("predictions", table, f"small-{i}")
            small = sum(t.num_rows for t in stored) / (time.perf_counter() - start)
            merged = pa.concat_tables(stored)
            chunks = [merged.slice(i, big) for i in range(0, merged.num_rows, big)]
            start = time.perf_counter()
            for i, chunk in enumerate(chunks):
                store.insert("predictions", chunk, f"big-{i}")
            large = merged.num_rows / (time.perf_counter() - start)
        finally:
            store.close()
    return {"small": small, "large": large}


def over_http(url: str, bodies: list[bytes], content_type: str, clients: int) -> float:
    """Predictions/s for posting every body once, from ``clients`` threads.

    Each thread keeps one connection (``http.client``: the standard library's client costs the
    load generator a fraction of what httpx does per request, and the load generator shares the
    machine's two cores with the server).
    """
    parts = urlsplit(url)
    per_batch = [0]
    errors: list[str] = []
    lock = threading.Lock()
    queue = list(range(len(bodies)))
    headers = {"Content-Type": content_type}

    def worker() -> None:
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=120)
        try:
            while True:
                with lock:
                    if not queue:
                        return
                    index = queue.pop()
                connection.request("POST", "/v1/predictions", bodies[index], headers)
                answer = connection.getresponse()
                text = answer.read()
                result = orjson.loads(text) if answer.status == 200 else None
                if result is None or result["rejected"]:
                    errors.append(text[:200].decode(errors="replace"))
                else:
                    with lock:
                        per_batch[0] += result["accepted"]
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"{len(errors)} requests failed, e.g. {errors[0]}")
    return per_batch[0] / elapsed


def sdk_end_to_end(url: str, calls: int, features: int) -> dict[str, float]:
    """SDK -> server -> store: ``calls`` calls of a ``@monitor`` function made as fast as one
    thread makes them (default client settings but a queue that holds the whole run, Arrow since
    pyarrow is imported), timed until ``flush()`` returns, then the stored rows counted."""
    import random

    import clickhouse_connect

    from keelwatch.collector import Client

    rng = random.Random(5)
    rows = [{f"f{j}": rng.random() for j in range(features)} for _ in range(4096)]
    client = Client(url, max_queue_size=calls + 1, metrics_registry=False, shutdown_timeout=60)
    predict = client.monitor(model="sdk-e2e", version="1")(lambda row: 0.5)
    predict(rows[0])  # the sender's first batch (imports, connection) before the clock starts
    client.flush(60)
    start = time.perf_counter()
    for i in range(calls):
        predict(rows[i & 4095])
    issued = time.perf_counter() - start
    flushed = client.flush(600)
    elapsed = time.perf_counter() - start
    dropped = sum(client.stats().dropped.values())
    client.shutdown()
    parts = urlsplit(url)
    ch = clickhouse_connect.get_client(host=parts.hostname or "", port=parts.port or 0)
    try:
        stored, unique = ch.query(
            "SELECT count(), uniqExact(prediction_id) FROM predictions WHERE model = 'sdk-e2e'"
        ).result_rows[0]
    finally:
        ch.close()
    return {
        "rate": calls / elapsed,
        "issued_rate": calls / issued,
        "stored": float(unique) - 1,  # the warm-up call
        "rows": float(stored) - 1,
        "dropped": float(dropped),
        "flushed": float(flushed),
    }


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far, all its threads (``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(data: Path) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(data)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    url = f"http://127.0.0.1:{int(process.stdout.readline())}"
    for _ in range(600):
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError("server did not start")


QUERY_ONE = (
    "SELECT arrayCount(e -> e <= num['f0'], {edges:Array(Float64)}) AS bin, count() AS c "
    "FROM predictions{final} WHERE project = 'bench' AND model = {m:String} "
    "AND ts >= {t0:DateTime64(6, 'UTC')} AND ts < {t1:DateTime64(6, 'UTC')} "
    "AND mapContains(num, 'f0') GROUP BY bin"
)
QUERY_ALL = (
    "SELECT f, arrayCount(e -> e <= v, {edges:Array(Float64)}) AS bin, count() AS c "
    "FROM predictions{final} ARRAY JOIN mapKeys(num) AS f, mapValues(num) AS v "
    "WHERE project = 'bench' AND model = {m:String} "
    "AND ts >= {t0:DateTime64(6, 'UTC')} AND ts < {t1:DateTime64(6, 'UTC')} GROUP BY f, bin"
)


def drift_query(rows: int, features: int, chunk: int = 200_000) -> dict[str, float]:
    """Insert ``rows`` over 4 models x 2 days; time one-day one-model aggregations (ms)."""
    from datetime import datetime, timedelta, timezone

    rng = np.random.default_rng(3)
    day0 = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    start_s = (day0 - timedelta(days=1)).timestamp()
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        store = EmbeddedStore(tmp)
        try:
            migrate(store)
            began = time.perf_counter()
            for offset in range(0, rows, chunk):
                n = min(chunk, rows - offset)
                keys = pa.array(np.tile(np.array([f"f{j}" for j in range(features)]), n))
                offsets = pa.array(np.arange(n + 1, dtype=np.int32) * features)
                num = pa.MapArray.from_arrays(
                    offsets, keys, pa.array(rng.normal(size=n * features))
                )
                micros = ((start_s + rng.uniform(0, 2 * 86400, n)) * 1e6).astype("int64")
                table = pa.table(
                    {
                        "project": pa.array(["bench"] * n),
                        "model": pa.array(
                            np.array(["m0", "m1", "m2", "m3"])[rng.integers(0, 4, n)]
                        ),
                        "prediction_id": pa.array(
                            np.char.add("r", np.arange(offset, offset + n).astype(str))
                        ),
                        "ts": pa.array(micros).cast(pa.timestamp("us", tz="UTC")),
                        "latency_ms": rng.exponential(5.0, n),
                        "num": num,
                    }
                )
                store.insert("predictions", table)
            results["load_s"] = time.perf_counter() - began
            params = {
                "edges": [float(x) for x in np.linspace(-2, 2, 9)],
                "m": "m1",
                "t0": day0 - timedelta(days=1),
                "t1": day0,
            }
            scanned = store.query(QUERY_ONE.replace("{final}", ""), params).column("c").to_pylist()
            results["window_rows"] = float(sum(scanned))
            for name, sql in (("one", QUERY_ONE), ("all", QUERY_ALL)):
                for final in ("", " FINAL"):
                    times = []
                    for _ in range(5 if name == "one" else 3):
                        t = time.perf_counter()
                        store.query(sql.replace("{final}", final), params)
                        times.append(time.perf_counter() - t)
                    results[f"{name}{final.strip().lower() and '_final'}_ms"] = (
                        1e3 * statistics.median(times)
                    )
        finally:
            store.close()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=600, help="batches per format")
    parser.add_argument("--batch", type=int, default=1000, help="records per batch")
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--clients", type=int, default=8, help="concurrent client threads")
    parser.add_argument("--rows", type=int, default=2_000_000, help="rows for the drift query")
    parser.add_argument("--skip-query", action="store_true")
    parser.add_argument(
        "--sdk-calls", type=int, default=500_000, help="SDK end-to-end calls (0: skip)"
    )
    args = parser.parse_args(argv)

    rng = np.random.default_rng(1)
    now = time.time()
    tables = [columns(args.batch, args.features, f"b{i}", now, rng) for i in range(args.batches)]
    json_bodies = [json_body(t, args.features) for t in tables]
    # Arrow bodies carry other ids, so the JSON run's dedup tokens and rows do not overlap.
    arrow_bodies = [
        arrow_body(
            t.set_column(0, "prediction_id", pa.array([f"a{i}-{k}" for k in range(t.num_rows)]))
        )
        for i, t in enumerate(tables)
    ]
    total = args.batch * args.batches
    print(
        f"{args.batches} batches x {args.batch} records x {args.features} features "
        f"({total:,} predictions per run); JSON body {len(json_bodies[0]) / 1024:.0f} KiB, "
        f"Arrow body {len(arrow_bodies[0]) / 1024:.0f} KiB"
    )
    base = direct(tables, 100_000)
    print(f"direct insert, {args.batch}-record batches   {base['small']:12,.0f} predictions/s")
    print(f"direct insert, 100,000-record batches {base['large']:12,.0f} predictions/s")

    with tempfile.TemporaryDirectory() as tmp:
        process, url = start_server(Path(tmp) / "data")
        try:
            rates: dict[str, float] = {}
            server_us: dict[str, float] = {}
            client_us: dict[str, float] = {}
            for name, bodies, kind in (
                ("JSON", json_bodies, "application/json"),
                ("Arrow", arrow_bodies, ARROW),
            ):
                server0, client0 = process_cpu_s(process.pid), time.process_time()
                rates[name] = over_http(url, bodies, kind, args.clients)
                client_us[name] = 1e6 * (time.process_time() - client0) / total
                time.sleep(2)  # background merges of what was just inserted count too
                server_us[name] = 1e6 * (process_cpu_s(process.pid) - server0) / total
            sdk = sdk_end_to_end(url, args.sdk_calls, args.features) if args.sdk_calls else None
        finally:
            process.terminate()
            process.wait(30)
    for name, rate in rates.items():
        print(
            f"server over HTTP, {name:5}, {args.clients} clients {rate:12,.0f} predictions/s   "
            f"x{rate / base['small']:.2f} of direct {args.batch}-record, "
            f"x{rate / base['large']:.2f} of direct 100k-record "
            f"(goals: >= 100,000/s, >= 0.20 of direct)"
        )
        print(
            f"  CPU per record: server {server_us[name]:.1f} us (incl. merges in the 2 s after), "
            f"client {client_us[name]:.1f} us; load average {os.getloadavg()[0]:.1f}"
        )

    if sdk is not None:
        print(
            f"SDK -> server -> store, one thread calling   {sdk['rate']:12,.0f} predictions/s "
            f"(calls issued at {sdk['issued_rate']:,.0f}/s; {sdk['stored']:,.0f} of "
            f"{args.sdk_calls:,} stored, {sdk['rows'] - sdk['stored']:,.0f} duplicate rows, "
            f"{sdk['dropped']:,.0f} dropped, flush {'ok' if sdk['flushed'] else 'timed out'})"
        )
    if not args.skip_query:
        q = drift_query(args.rows, args.features)
        print(
            f"drift query: {args.rows:,} predictions (4 models x 2 days) loaded in "
            f"{q['load_s']:.1f} s; one model-day window = {q['window_rows']:,.0f} rows"
        )
        one, one_final = q["one_ms"], q["one_final_ms"]
        print(f"  one feature histogram   {one:8.1f} ms   with FINAL {one_final:8.1f} ms")
        print(
            f"  all {args.features} feature histograms {q['all_ms']:8.1f} ms   "
            f"with FINAL {q['all_final_ms']:8.1f} ms"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
