"""Per-call overhead of ``@monitor`` against a bare call and a bare OpenTelemetry span.

Run: ``.venv/bin/python bench/sdk_overhead.py [--calls 200000] [--repeats 5]``

Each repeat times every call with ``perf_counter_ns`` for three variants, interleaved:

* ``bare``     the undecorated function (one dict of 20 numeric features in, a float out);
* ``monitor``  the same under ``@monitor`` with the sender running (null transport, queue large
  enough that no call is dropped, so every call takes the full append path);
* ``otel``     the same inside ``tracer.start_as_current_span`` (opentelemetry-sdk
  ``TracerProvider`` + ``BatchSpanProcessor`` with an exporter that discards).

Between repeats the sender drains its backlog (untimed). Reported: the median over repeats of the
per-call p50 and p99, the cost each adds to the bare call, and the ratios against the goals
(added p50 of @monitor <= 0.1 x that of the OTel span; added p99 of @monitor < 50 us).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from array import array
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from keelwatch.collector import Client, SendResult


class NullTransport:
    """Accepts every batch at once."""

    def send(self, path: str, body: bytes, headers: Mapping[str, str]) -> SendResult:
        return SendResult(200, None, b'{"accepted": 0, "rejected": []}')


class NullExporter(SpanExporter):
    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def predict(row: dict[str, float]) -> float:
    return row["f0"] * 0.5 + row["f19"]


def timed(call: Callable[[], Any], n: int) -> array:
    out = array("q", bytes(8 * n))
    clock = time.perf_counter_ns
    for i in range(n):
        t0 = clock()
        call()
        out[i] = clock() - t0
    return out


def quantile(samples: array, q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    n = args.calls

    row = {f"f{i}": float(i) for i in range(20)}
    client = Client(
        transport=NullTransport(),
        max_queue_size=n + 1000,
        batch_size=2000,
        metrics_registry=False,
    )
    monitored = client.monitor(model="bench", version="1")(predict)
    provider = TracerProvider()
    processor = BatchSpanProcessor(NullExporter())
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("bench")

    def in_span() -> float:
        with tracer.start_as_current_span("predict"):
            return predict(row)

    variants: dict[str, Callable[[], Any]] = {
        "bare": lambda: predict(row),
        "monitor": lambda: monitored(row),
        "otel": in_span,
    }
    results: dict[str, list[tuple[float, float]]] = {k: [] for k in variants}
    drain_s = []
    for _ in range(args.repeats):
        for name, call in variants.items():
            timed(call, 2000)  # warm up
            samples = timed(call, n)
            results[name].append((quantile(samples, 0.5), quantile(samples, 0.99)))
            if name == "monitor":
                t0 = time.perf_counter()
                if not client.flush(timeout=600):
                    raise SystemExit("sender did not drain")
                drain_s.append(time.perf_counter() - t0)
            processor.force_flush()
            gc.collect()
    stats = client.stats()
    client.shutdown()
    provider.shutdown()

    med = {k: (statistics.median(p for p, _ in v), statistics.median(q for _, q in v))
           for k, v in results.items()}  # fmt: skip
    bare50, bare99 = med["bare"]
    print(f"{n} calls x {args.repeats} repeats; medians over repeats, microseconds per call")
    print(f"{'variant':<10}{'p50':>10}{'p99':>10}{'added p50':>12}{'added p99':>12}")
    for name, (p50, p99) in med.items():
        print(f"{name:<10}{p50:>10.2f}{p99:>10.2f}{p50 - bare50:>12.2f}{p99 - bare99:>12.2f}")
    mon_add = med["monitor"][0] - bare50
    otel_add = med["otel"][0] - bare50
    mon_add99 = med["monitor"][1] - bare99
    ratio = mon_add / otel_add
    print(f"added p50 @monitor / added p50 OTel span: {ratio:.3f} (goal <= 0.1)")
    print(f"added p99 @monitor: {mon_add99:.2f} us (goal < 50 us)")
    drain = statistics.median(drain_s)
    print(f"sender: {stats.sent} records sent, dropped {dict(stats.dropped)}; backlog left "
          f"after each timed run drained in {drain:.2f} s (untimed)")  # fmt: skip


if __name__ == "__main__":
    main()
