"""Block conversion: the sender's common calls converted a queue block at a time give exactly
the records one-by-one conversion gives, refuse whole any block of another shape, and keep
Arrow batches within their byte budget."""

from __future__ import annotations

import collections
import math
import threading
import time
from typing import Any

import pytest

from keelwatch.collector import InMemoryTransport
from keelwatch.collector._arrow import MAX_BATCH_BYTES, ArrowRows, decode
from keelwatch.collector._config import Config
from keelwatch.collector._outbox import MemoryOutbox
from keelwatch.collector._records import Converter
from keelwatch.collector._sender import Sender
from keelwatch.collector._spec import FlushMarker, MonitorSpec, RawCall, RawOutcome

pa = pytest.importorskip("pyarrow")
NOW = time.time()


def score(row: dict[str, Any]) -> float:
    return 0.5


SPEC = MonitorSpec(score, "blocks", version="2", slot="canary", tags={"region": "eu"})


def call(seq: int, features: dict[str, Any], spec: MonitorSpec = SPEC, **fields: Any) -> RawCall:
    base: dict[str, Any] = dict(
        spec=spec, seq=seq, ts=NOW - seq, latency_s=0.001 * seq, args=(features,), kwargs={},
        result=0.25 * seq, error=None, trace=None,
    )  # fmt: skip
    base.update(fields)
    return RawCall(**base)


def common_block(n: int = 100) -> list[RawCall]:
    """The common shape, with its edge values: ints (one past 2**53), NaN, infinities, and
    records whose names come in another order."""
    block = []
    for i in range(n):
        row: dict[str, Any] = {"a": i * 1.5, "b": i, "c": 1e300 * i}
        if i % 7 == 3:
            row = {"c": -math.inf, "b": 2**60 + 1, "a": math.nan}
        block.append(call(i + 1, row))
    return block


def convert(block: list[Any], whole: bool) -> tuple[ArrowRows, int | None]:
    converter = Converter(Config(), lambda reason, n: None)
    rows = converter.arrow = ArrowRows(Config().max_record_bytes)
    taken = converter.calls(block) if whole else None
    if not whole:
        for entry in block:
            assert converter.call(entry) == []  # all of them go into the columns
    return rows, taken


def by_id(rows: ArrowRows) -> dict[str, dict[str, Any]]:
    return {r["prediction_id"]: r for r in decode(rows.body())}


def test_a_block_gives_the_records_of_one_by_one_conversion():
    block = common_block()
    whole, taken = convert(block, whole=True)
    one_by_one, _ = convert(block, whole=False)
    assert taken == len(block) == len(whole)
    ours, expected = by_id(whole), by_id(one_by_one)
    assert ours == expected
    # Values by name whatever the order; NaN and infinities are missing, as in JSON.
    odd = next(r for r in ours.values() if "a" not in r["features"])
    assert odd["features"] == {"b": float(2**60 + 1)}
    assert odd["model"] == "blocks" and odd["slot"] == "canary" and odd["tags"] == {"region": "eu"}
    assert {r["output"]["value"] for r in ours.values()} == {0.25 * c.seq for c in block}


@pytest.mark.parametrize(
    "odd",
    [
        call(999, {"a": True, "b": 1, "c": 2.0}),  # bools become strings on the general path
        call(999, {"a": "x", "b": 1, "c": 2.0}),
        call(999, {"a": None, "b": 1, "c": 2.0}),
        call(999, {"a": 1.0, "b": 1, "d": 2.0}),  # same length, another name
        call(999, {"a": 1.0, "b": 1}),
        call(999, {"a": 1.0, "b": 1, "c": 2.0}, error=ValueError("boom")),
        call(999, {"a": 1.0, "b": 1, "c": 2.0}, kwargs={"k": 1}),
        call(999, {"a": 1.0, "b": 1, "c": 2.0}, trace=object()),
        call(999, {"a": 1.0, "b": 1, "c": 2.0}, result=1),
        call(999, {"a": 1.0, "b": 1, "c": 2.0}, result=math.nan),
        call(999, {"a": 1.0, "b": 1, "c": 2.0}, spec=MonitorSpec(score, "other")),
        RawOutcome("p1", "blocks", NOW, "yes", None),
        FlushMarker(threading.Event(), []),
    ],
    ids=lambda e: type(e).__name__ if not isinstance(e, RawCall) else None,
)
def test_a_block_of_another_shape_is_left_whole(odd):
    block: list[Any] = common_block(20)
    block.insert(10, odd)
    rows, taken = convert(block, whole=True)
    assert taken is None
    assert len(rows) == 0 and rows.bytes == 0 and not rows._groups and not rows._specs


def test_a_block_stops_at_the_batch_byte_budget():
    wide = {f"feature_{j:03d}": float(j) for j in range(500)}
    per = 96 + 9 * len(wide)
    block = [call(i + 1, wide) for i in range(MAX_BATCH_BYTES // per + 50)]
    rows, taken = convert(block, whole=True)
    assert taken == MAX_BATCH_BYTES // per == len(rows)
    assert rows.bytes <= MAX_BATCH_BYTES
    converter = Converter(Config(), lambda reason, n: None)
    converter.arrow = rows
    assert converter.calls(block[taken:]) == 0  # full: nothing more until it is sealed


def test_the_sender_ships_blocks_whole_within_budget_and_counts_them():
    """A queue of common calls (wide enough that batches end on bytes) behind a flush marker and
    an outcome: every record sent once, batches under the byte budget, metrics per call."""
    wide = {f"feature_{j:03d}": float(j) for j in range(500)}
    per_batch = MAX_BATCH_BYTES // (96 + 9 * len(wide))
    queue: collections.deque[Any] = collections.deque(call(i + 1, wide) for i in range(2000))
    done = threading.Event()
    queue.append(FlushMarker(done, []))
    queue.append(RawOutcome("p1", "blocks", NOW, "yes", None))
    queue.extend(call(i + 1, {"a": float(i)}) for i in range(2000, 2200))
    transport, observed, dropped = InMemoryTransport(), [], []
    stop = threading.Event()
    stop.set()  # one final pass: drain all, send all
    config = Config(wire_format="arrow", max_queue_size=10_000)
    sender = Sender(
        config, transport, queue, threading.Event(), stop, outbox=lambda: MemoryOutbox(10_000),
        drop=lambda reason, n: dropped.append((reason, n)), sent=lambda n: None,
        observe=lambda calls: observed.append(len(calls)), clock=time.monotonic,
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )  # fmt: skip
    sender.run()
    assert done.is_set() and not dropped and not queue
    arrow = [r for r in transport.requests if r.arrow]
    counts = [len(r.records()) for r in arrow]
    assert sum(counts) == 2200 and max(counts) <= per_batch
    records = transport.records()
    assert sorted(int(r["prediction_id"][16:], 16) for r in records) == list(range(1, 2201))
    assert len(transport.records("/v1/outcomes")) == 1
    assert sum(observed) == 2200 and max(observed) > 1  # counted, in blocks


def test_a_failing_metrics_tally_loses_no_block():
    def observe(calls: Any) -> None:
        raise RuntimeError("tally broke")

    queue: collections.deque[Any] = collections.deque(
        call(i + 1, {"a": float(i), "b": i}) for i in range(500)
    )
    transport, stop = InMemoryTransport(), threading.Event()
    stop.set()
    sender = Sender(
        Config(wire_format="arrow"), transport, queue, threading.Event(), stop,
        outbox=lambda: MemoryOutbox(10_000), drop=lambda reason, n: None, sent=lambda n: None,
        observe=observe, clock=time.monotonic, headers={},
    )  # fmt: skip
    sender.run()
    assert len(transport.records()) == 500


def test_interleaved_functions_and_outcomes_still_convert_in_blocks():
    """Two functions' calls alternating with outcomes: each function's calls go as blocks, the
    outcomes one by one, and a flush marker still waits for everything queued before it."""
    other = MonitorSpec(score, "other", version="9")
    queue: collections.deque[Any] = collections.deque()
    for i in range(600):
        queue.append(call(i + 1, {"a": float(i), "b": i}, spec=SPEC if i % 2 else other))
        if i % 3 == 0:
            queue.append(RawOutcome(f"p{i}", "blocks", NOW, "yes", None))
    done, result = threading.Event(), []
    queue.append(FlushMarker(done, result))
    transport, observed, stop = InMemoryTransport(), [], threading.Event()
    stop.set()
    sender = Sender(
        Config(wire_format="arrow"), transport, queue, threading.Event(), stop,
        outbox=lambda: MemoryOutbox(10_000), drop=lambda reason, n: None, sent=lambda n: None,
        observe=lambda calls: observed.append(len(calls)), clock=time.monotonic,
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )  # fmt: skip
    sender.run()
    assert done.is_set() and result == [True] and not queue
    records = transport.records()
    assert sorted(int(r["prediction_id"][16:], 16) for r in records) == list(range(1, 601))
    assert {r["model"] for r in records} == {"blocks", "other"}
    assert len(transport.records("/v1/outcomes")) == 200
    assert sum(observed) == 600 and max(observed) >= 64  # blocks, not one by one
