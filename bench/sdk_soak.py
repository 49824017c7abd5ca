"""Soak: a paced service calling a ``@monitor`` function against a real ``keelwatch serve``.

Run: ``.venv/bin/python bench/sdk_soak.py [--rate 50000] [--seconds 60] [--values random]``

Goal (from the issue): calling a monitored function 50,000 times a second for 60 s, with a live
server, loses no record and slows the service by no more than 10%.

In one run:

1. ``keelwatch serve`` starts in a subprocess on a fresh temporary embedded store
   (``--detect-interval 0``), on a free loopback port.
2. **bare**: the undecorated function (a logistic score over one dict of ``--features`` numeric
   features, taken round-robin from a pool of distinct rows) is called at ``--rate`` calls/s for
   ``--baseline-seconds``, in bursts of about 1 ms: each round makes every call due by now, then
   sleeps until the next one is due. A loop that falls behind catches up without sleeping, so a
   slower call shows up as a lower achieved rate. Every call is timed (``perf_counter_ns``).
3. **monitor**: the same loop with the function under ``@monitor`` (default ``Client`` settings,
   HTTP to the server), then ``flush``; the stored records are counted through the server's
   ClickHouse endpoint (``clickhouse_connect``).

Reported: achieved rate and per-call wall time (mean, p50, p99, p99.9) of both loops; the
slowdown as ``1 - monitored rate / bare rate`` (the service's throughput, the goal's measure) and
as the ratio of the mean per-call times (which includes waits for the GIL held by the sender
thread); CPU of the caller thread, the sender thread and the server; records lost (calls minus
distinct stored ids), duplicate rows and the SDK's drop counters.

``--values random`` gives full-precision floats (``random() * 100``, the costliest to print as
JSON); ``round`` gives two decimals, ``int`` small whole numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import operator
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from array import array
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import clickhouse_connect

from keelwatch.collector import Client, HttpTransport, SendResult

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def server(data: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    log = open(data / "server.log", "wb")  # noqa: SIM115 - closed below
    cmd = [sys.executable, "-m", "keelwatch", "serve", "--data", str(data / "store")]
    cmd += ["--port", str(port), "--detect-interval", "0"]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.close()
                    raise SystemExit(
                        "server did not start:\n" + (data / "server.log").read_text()[-3000:]
                    ) from None
                time.sleep(0.2)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def cpu_seconds(stat_path: str) -> float:
    """utime + stime of a process or thread from ``/proc`` (0 where there is no ``/proc``)."""
    try:
        fields = Path(stat_path).read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def make_rows(kind: str, n_features: int, pool: int) -> list[dict[str, float]]:
    rng = random.Random(7)

    def value() -> float:
        if kind == "random":
            return rng.random() * 100
        if kind == "round":
            return round(rng.random() * 100, 2)
        return float(rng.randrange(100))

    return [{f"f{j}": value() for j in range(n_features)} for _ in range(pool)]


def make_model(n_features: int) -> Callable[[dict[str, float]], float]:
    weights = [((j % 7) - 3) / 100.0 for j in range(n_features)]
    mul, exp = operator.mul, math.exp

    def predict(row: dict[str, float]) -> float:
        return 1.0 / (1.0 + exp(-sum(map(mul, weights, row.values()))))

    return predict


class TimedTransport:
    """The SDK's own HTTP transport, timing each request (the server's answer time)."""

    def __init__(self, endpoint: str) -> None:
        self._inner = HttpTransport(endpoint, timeout=30)
        self.seconds: list[float] = []  # appended from several request threads
        self.arrow = self.json = 0

    def send(self, path: str, body: bytes, headers: Mapping[str, str]) -> SendResult:
        if headers.get("Content-Type", "").endswith("arrow.stream"):
            self.arrow += 1
        else:
            self.json += 1
        t0 = time.perf_counter()
        try:
            return self._inner.send(path, body, headers)
        finally:
            self.seconds.append(time.perf_counter() - t0)

    def close(self) -> None:
        self._inner.close()


class Run:
    """One paced loop's timings."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.latency_ns = array("q", bytes(8 * n))
        self.elapsed = 0.0
        self.slept = 0.0
        self.cpu = 0.0

    def rate(self) -> float:
        return self.n / self.elapsed

    def quantile(self, q: float) -> float:
        ordered = sorted(self.latency_ns)
        return ordered[min(self.n - 1, int(q * self.n))] / 1000.0

    def mean(self) -> float:
        return statistics.fmean(self.latency_ns) / 1000.0


class DropWatch(threading.Thread):
    """Samples the client's queue depth, its drops and the sender's and server's CPU every
    0.5 s: when records were lost, and whether the sender was short of CPU or waiting then."""

    def __init__(self, client: Client, sender_stat: str, server_stat: str) -> None:
        super().__init__(daemon=True)
        self._client = client
        self._stats = (sender_stat, server_stat)
        self._done = threading.Event()
        # (seconds, queued, dropped so far, sender CPU s, server CPU s)
        self.samples: list[tuple[float, int, int, float, float]] = []
        self.start()

    def run(self) -> None:
        t0 = time.perf_counter()
        while not self._done.wait(0.5):
            stats = self._client.stats()
            dropped = sum(stats.dropped.values())
            cpu = [cpu_seconds(path) for path in self._stats]
            self.samples.append((time.perf_counter() - t0, stats.queued, dropped, *cpu))

    def stop(self) -> None:
        self._done.set()
        self.join()

    def report(self) -> str:
        """Seconds into the loop at which drops grew, with the queue depth then; the samples
        around the deepest queue (queue, and the sender's and server's share of a core)."""
        spans, before = [], 0
        for at, queued, dropped, _, _ in self.samples:
            if dropped > before:
                spans.append(f"{at:.1f}s +{dropped - before} (queue {queued})")
            before = dropped
        peak = max((q for _, q, _, _, _ in self.samples), default=0)
        lines = [f"peak sampled queue {peak}; drops at: {', '.join(spans) or 'none'}"]
        if len(self.samples) > 1:
            top = max(range(len(self.samples)), key=lambda i: self.samples[i][1])
            lines.append("around the peak: seconds queue sender% server%")
            for i in range(max(1, top - 6), min(len(self.samples), top + 3)):
                (at, q, _, snd, srv), prev = self.samples[i], self.samples[i - 1]
                dt = at - prev[0]
                lines.append(
                    f"  {at:5.1f} {q:6d} {100 * (snd - prev[3]) / dt:4.0f} "
                    f"{100 * (srv - prev[4]) / dt:4.0f}"
                )
        return "\n".join(lines)


def paced(
    fn: Callable[[dict[str, float]], float], rows: list[dict[str, float]], rate: float, n: int
) -> Run:
    run = Run(n)
    lat = run.latency_ns
    clock, sleep = time.perf_counter_ns, time.sleep
    pool = len(rows)
    ns_per_call = 1e9 / rate
    cpu0 = time.thread_time()
    start = clock()
    slept = 0
    i = 0
    while i < n:
        due = min(n, int((clock() - start) / ns_per_call) + 1)
        if due <= i:
            t = clock()
            sleep(max(0.0, ((i * ns_per_call) - (t - start)) / 1e9))
            slept += clock() - t
            continue
        while i < due:
            row = rows[i % pool]
            t0 = clock()
            fn(row)
            lat[i] = clock() - t0
            i += 1
    run.elapsed = (clock() - start) / 1e9
    run.slept = slept / 1e9
    run.cpu = time.thread_time() - cpu0
    return run


def count_stored(port: int, model: str, expected: int, wait: float) -> tuple[int, int]:
    """(rows, distinct prediction ids) of ``model``, once ``expected`` are there or the count
    has stopped moving (after the SDK's flush every acknowledged record is stored)."""
    client = clickhouse_connect.get_client(host="127.0.0.1", port=port)
    query = "SELECT count(), uniqExact(prediction_id) FROM predictions WHERE model = {m:String}"
    deadline = time.monotonic() + wait
    last, still = -1, 0
    while True:
        rows, unique = client.query(query, parameters={"m": model}).result_rows[0]
        still = still + 1 if unique == last else 0
        if unique >= expected or still >= 4 or time.monotonic() > deadline:
            return int(rows), int(unique)
        last = unique
        time.sleep(0.5)


def report(name: str, run: Run) -> None:
    busy = 1 - run.slept / run.elapsed
    print(
        f"{name:<8}{run.n:>10}{run.elapsed:>9.2f}{run.rate():>11.0f}{run.mean():>9.2f}"
        f"{run.quantile(0.5):>9.2f}{run.quantile(0.99):>9.2f}{run.quantile(0.999):>10.2f}"
        f"{busy:>8.1%}{run.cpu:>9.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=50_000, help="target calls per second")
    parser.add_argument("--seconds", type=float, default=60, help="monitored loop duration")
    parser.add_argument("--baseline-seconds", type=float, help="bare loop (default --seconds)")
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--values", choices=("random", "round", "int"), default="random")
    parser.add_argument("--queue", type=int, help="max_queue_size (default: the client's)")
    parser.add_argument("--batch", type=int, help="batch_size (default: the client's)")
    parser.add_argument("--in-flight", type=int, help="max_in_flight (default: the client's)")
    parser.add_argument(
        "--wire",
        choices=("auto", "arrow", "json"),
        default="auto",
        help="wire_format; auto = Arrow when pyarrow is imported (--import-pyarrow)",
    )
    parser.add_argument(
        "--no-metrics",
        dest="metrics",
        action="store_false",
        help="no Prometheus metrics in the service (default: on, as with prometheus_client)",
    )
    parser.add_argument(
        "--import-pyarrow",
        action="store_true",
        help="import pyarrow first, as a service using pandas 2 does",
    )
    args = parser.parse_args()
    if args.import_pyarrow:
        import pyarrow  # noqa: F401

    rows = make_rows(args.values, args.features, 4096)
    predict = make_model(args.features)
    n_mon = int(args.rate * args.seconds)
    n_bare = int(args.rate * (args.baseline_seconds or args.seconds))
    model = "soak"
    with (
        tempfile.TemporaryDirectory(prefix="keelwatch-soak-") as tmp,
        server(Path(tmp), port := free_port()) as proc,
    ):
        print(f"server pid {proc.pid} on 127.0.0.1:{port}; {os.cpu_count()} CPUs, load average "
              f"{os.getloadavg()[0]:.2f} at start")  # fmt: skip
        transport = TimedTransport(f"http://127.0.0.1:{port}")
        client = Client(
            transport=transport,
            max_queue_size=args.queue,
            batch_size=args.batch,
            max_in_flight=args.in_flight,
            wire_format=args.wire,
            metrics_registry=None if args.metrics else False,
            shutdown_timeout=30,
        )
        monitored = client.monitor(model=model, version="1")(predict)
        paced(predict, rows, args.rate, min(n_bare, 20_000))  # warm up
        monitored(rows[0])
        if not client.flush(30):
            raise SystemExit("the server did not acknowledge a first record")

        bare = paced(predict, rows, args.rate, n_bare)
        sender = client._thread
        sender_stat = f"/proc/self/task/{sender.native_id}/stat" if sender else ""
        server_stat = f"/proc/{proc.pid}/stat"
        sender0, server0 = cpu_seconds(sender_stat), cpu_seconds(server_stat)
        process0 = cpu_seconds("/proc/self/stat")
        requests0 = len(transport.seconds)
        sent0 = client.stats().sent
        watch = DropWatch(client, sender_stat, server_stat)
        mon = paced(monitored, rows, args.rate, n_mon)
        watch.stop()
        behind = client.stats().queued
        t0 = time.perf_counter()
        flushed = client.flush(600)
        drain = time.perf_counter() - t0
        sender_cpu = cpu_seconds(sender_stat) - sender0
        server_cpu = cpu_seconds(server_stat) - server0
        # Everything in this process but the service's loop: the sender and its request threads.
        sdk_cpu = cpu_seconds("/proc/self/stat") - process0 - mon.cpu
        stats = client.stats()
        converted = max(1, stats.sent - sent0)
        client.shutdown()
        answers = transport.seconds[requests0:]
        expected = n_mon + 1
        stored, unique = count_stored(port, model, expected, wait=60)
        print(f"load average {os.getloadavg()[0]:.2f} at end; values={args.values}, "
              f"{args.features} features, queue {client.config.max_queue_size}, "
              f"batch {client.config.batch_size}, in flight {client.config.max_in_flight}, "
              f"metrics {'on' if args.metrics else 'off'}, wire {args.wire}: "
              f"{transport.arrow} Arrow / {transport.json} JSON requests")  # fmt: skip

    print(f"\n{'loop':<8}{'calls':>10}{'seconds':>9}{'calls/s':>11}{'mean us':>9}{'p50':>9}"
          f"{'p99':>9}{'p99.9':>10}{'busy':>8}{'cpu s':>9}")  # fmt: skip
    report("bare", bare)
    report("monitor", mon)
    slowdown = 1 - mon.rate() / bare.rate()
    print(f"\nslowdown (throughput, 1 - monitored/bare calls/s): {slowdown:+.1%} (goal <= 10%)")
    print(f"mean per-call time monitored / bare: {mon.mean() / bare.mean():.2f}x "
          f"(+{mon.mean() - bare.mean():.2f} us); queue at loop end {behind}, flush took "
          f"{drain:.2f} s ({'ok' if flushed else 'NOT acknowledged'})")  # fmt: skip
    print(f"CPU during the monitored loop + flush: caller {mon.cpu:.2f} s, sender thread "
          f"{sender_cpu:.2f} s ({sender_cpu / converted * 1e6:.1f} us/record shipped), sender "
          f"and request threads {sdk_cpu:.2f} s ({sdk_cpu / converted * 1e6:.1f} us/record), "
          f"server {server_cpu:.2f} s ({server_cpu / converted * 1e6:.1f} us/record)")  # fmt: skip
    if answers:
        mean_ms, max_ms = statistics.fmean(answers) * 1e3, max(answers) * 1e3
        waiting = sum(answers) / (mon.elapsed + drain)
        print(f"requests: {len(answers)}, server answer time mean {mean_ms:.1f} ms, max "
              f"{max_ms:.1f} ms; requests in flight on average {waiting:.2f}")  # fmt: skip
    lost = expected - unique
    print(
        f"records: {expected} calls, {unique} distinct stored, lost {lost}, duplicate rows "
        f"{stored - unique}; SDK sent {stats.sent}, dropped {dict(stats.dropped) or 0}"
    )
    print(watch.report())
    ok = lost == 0 and slowdown <= 0.10
    print(f"goal (no loss, slowdown <= 10%) at {args.rate:.0f}/s: {'MET' if ok else 'NOT MET'}")


if __name__ == "__main__":
    threading.current_thread().name = "soak"
    main()
