"""Group commit: concurrent batches share inserts; retries dropped; failures reach every caller."""

from __future__ import annotations

import threading

import pyarrow as pa
import pytest

from keelwatch.collector.server._coalesce import CoalescingWriter


class Recorder:
    """An inner writer that records inserts, blocks the first until released, can fail."""

    def __init__(self) -> None:
        self.inserts: list[tuple[str, list[int], str]] = []
        self.release = threading.Event()
        self.entered = threading.Event()
        self.fail: Exception | None = None

    def write(self, table: str, data: pa.Table, token: str) -> None:
        self.entered.set()
        self.release.wait(10)
        if self.fail:
            raise self.fail
        self.inserts.append((table, data.column("x").to_pylist(), token))

    def close(self) -> None:
        pass


def rows(*values: int) -> pa.Table:
    return pa.table({"x": list(values)})


def test_batches_queued_during_an_insert_share_the_next_one() -> None:
    inner = Recorder()
    writer = CoalescingWriter(inner)
    first = threading.Thread(target=writer.write, args=("t", rows(1), "a"))
    first.start()
    assert inner.entered.wait(10)
    later = [
        threading.Thread(target=writer.write, args=("t", rows(v), f"tok{v}")) for v in (2, 3, 4)
    ]
    for thread in later:
        thread.start()
    while len(writer._queue) < 3:  # all three waiting behind the first insert
        first.join(0.001)
    inner.release.set()
    for thread in [first, *later]:
        thread.join(10)
    writer.close()
    assert [(t, sorted(x)) for t, x, _ in inner.inserts] == [("t", [1]), ("t", [2, 3, 4])]


def test_retried_batch_is_written_once() -> None:
    inner = Recorder()
    inner.release.set()
    writer = CoalescingWriter(inner)
    writer.write("t", rows(1), "same")
    writer.write("t", rows(1), "same")
    writer.write("t", rows(2), "other")
    writer.close()
    assert [x for _, x, _ in inner.inserts] == [[1], [2]]


def test_failure_reaches_every_caller_and_is_not_remembered() -> None:
    inner = Recorder()
    inner.release.set()
    inner.fail = RuntimeError("store down")
    writer = CoalescingWriter(inner)
    with pytest.raises(RuntimeError, match="store down"):
        writer.write("t", rows(1), "a")
    inner.fail = None
    writer.write("t", rows(1), "a")  # the retry goes through
    writer.close()
    assert [x for _, x, _ in inner.inserts] == [[1]]


def test_closed_writer_refuses() -> None:
    writer = CoalescingWriter(Recorder())
    writer.close()
    with pytest.raises(RuntimeError):
        writer.write("t", rows(1), "a")


def test_linger_gathers_batches_that_arrive_close_together() -> None:
    inner = Recorder()
    inner.release.set()
    writer = CoalescingWriter(inner, min_rows=2, linger_s=5.0)
    threads = [threading.Thread(target=writer.write, args=("t", rows(v), f"k{v}")) for v in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    writer.close()
    assert [sorted(x) for _, x, _ in inner.inserts] == [[1, 2]]
