"""Several requests in flight: no loss, no duplicate, flush and shutdown wait for all of them,
retries and back-off still per batch, and the real HTTP server stores each record once."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping

import pytest

from keelwatch.collector import HttpTransport, InMemoryTransport, SendResult
from keelwatch.collector._transport import Request

OK = SendResult(200, None, b'{"accepted": 0, "rejected": []}')


class Gate:
    """A transport handler that holds every request until told, counting those held at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.arrived = threading.Condition(self.lock)
        self.waiting: list[threading.Event] = []
        self.most = 0

    def __call__(self, path: str, body: bytes, headers: Mapping[str, str]) -> SendResult:
        release = threading.Event()
        with self.lock:
            self.waiting.append(release)
            self.most = max(self.most, sum(not e.is_set() for e in self.waiting))
            self.arrived.notify_all()
        release.wait(10)
        return OK

    def wait_for(self, n: int) -> None:
        with self.lock:
            assert self.arrived.wait_for(lambda: len(self.waiting) >= n, 5)


def xs(transport: InMemoryTransport) -> list[float]:
    return [r["features"]["x"] for r in transport.records()]


@pytest.mark.parametrize("wire", ["json", "arrow"])
def test_answers_in_any_order_lose_and_double_nothing(make_client, wire):
    gate = Gate()
    transport = InMemoryTransport(handler=gate)
    client = make_client(transport=transport, batch_size=5, max_in_flight=3, wire_format=wire)
    f = client.monitor(model="m")(lambda x: x)
    for i in range(30):
        f(i)
    gate.wait_for(3)
    assert len(transport.requests) == 3  # no more than max_in_flight at once
    done: list[bool] = []
    flusher = threading.Thread(target=lambda: done.append(client.flush(10)))
    flusher.start()
    for event in reversed(gate.waiting[:3]):  # the newest request is answered first
        event.set()
    for n in range(4, 7):
        gate.wait_for(n)
        assert not done  # flush waits while any batch is unanswered
        gate.waiting[n - 1].set()
    flusher.join(10)
    assert done == [True]
    assert gate.most == 3
    assert sorted(xs(transport)) == list(range(30))
    assert client.stats().sent == 30 and not client.stats().dropped


def test_a_failed_batch_is_retried_alone_and_the_others_are_not_resent(make_client):
    clock = [0.0]
    refused = []

    def handler(path: str, body: bytes, headers: Mapping[str, str]) -> SendResult:
        if Request(path, body, headers).records()[0]["features"]["x"] == 0 and not refused:
            refused.append(path)
            with transport.sent:  # refused once both batches are on their way
                transport.sent.wait_for(lambda: len(transport.requests) >= 2, 5)
            return SendResult(503, retry_after=2.0)
        return OK

    transport = InMemoryTransport(handler=handler)
    client = make_client(transport=transport, batch_size=4, max_in_flight=2, clock=lambda: clock[0])
    f = client.monitor(model="m")(lambda x: x)
    for i in range(8):
        f(i)
    with transport.sent:
        assert transport.sent.wait_for(lambda: len(transport.requests) >= 2, 5)
    assert not client.flush(0.3)  # the first batch waits for Retry-After (2 s, injected clock)
    assert len(transport.requests) == 2
    clock[0] += 2.5
    assert client.flush(5)
    assert sorted(xs(transport)) == sorted([*range(8), *range(4)])
    firsts = [r.records()[0]["features"]["x"] for r in transport.requests]
    assert firsts == [0, 4, 0]  # only the refused batch went again
    assert client.stats().sent == 8


def test_without_spool_a_batch_gives_up_after_max_retries_while_others_go_through(make_client):
    def handler(path: str, body: bytes, headers: Mapping[str, str]) -> SendResult:
        if Request(path, body, headers).records()[0]["features"]["x"] == 0:
            return SendResult(500)
        return OK

    transport = InMemoryTransport(handler=handler)
    client = make_client(transport=transport, batch_size=2, max_retries=2, max_backoff=0.01)
    f = client.monitor(model="m")(lambda x: x)
    for i in range(6):
        f(i)
    assert client.flush(5) is False  # one batch was lost: flush says so
    stats = client.stats()
    assert stats.sent == 4 and stats.dropped == {"send_failed": 2}
    assert sum(r.records()[0]["features"]["x"] == 0 for r in transport.requests) == 3


def test_shutdown_waits_for_requests_in_flight(make_client):
    gate = Gate()
    transport = InMemoryTransport(handler=gate)
    client = make_client(transport=transport, batch_size=3, max_in_flight=2, shutdown_timeout=5)
    f = client.monitor(model="m")(lambda x: x)
    for i in range(6):
        f(i)
    gate.wait_for(2)
    threading.Timer(0.2, lambda: [e.set() for e in gate.waiting]).start()
    client.shutdown()
    assert client.stats().sent == 6 and not client.stats().dropped


def test_http_transport_is_shared_by_threads_and_not_across_fork(collector):
    transport = HttpTransport(collector.url)
    body = b'{"records": []}'
    headers = {"Content-Type": "application/json"}
    threads = [
        threading.Thread(target=transport.send, args=("/v1/predictions", body, headers))
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert len(collector.requests) == 4
    transport._release(transport._connect())  # as if kept alive by an HTTP/1.1 server
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            _, reused = transport._acquire()
            code = 3 if reused else 0  # never the parent's socket
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert transport._acquire()[1]  # the parent still reuses it
    transport.close()


def test_several_in_flight_against_the_real_server(store, live_server):
    from keelwatch.collector import Client
    from keelwatch.collector.server import ServerConfig, create_app
    from keelwatch.store import Retention

    config = ServerConfig(detect_interval_s=0, retention=Retention(0, 0, 0))
    with live_server(create_app(config, store=store)) as server:
        client = Client(
            endpoint=server.url, batch_size=50, max_in_flight=4, metrics_registry=False,
            wire_format="arrow", flush_interval=0.05,
        )  # fmt: skip
        try:
            f = client.monitor(model="inflight")(lambda row: 0.5)
            for i in range(400):
                f({"a": float(i), "b": i % 7})
            assert client.flush(20)
        finally:
            client.shutdown()
        assert client.stats().sent == 400 and not client.stats().dropped
        rows = store.query(
            "SELECT count(), uniqExact(prediction_id), sum(num['a']) FROM predictions"
            " WHERE model = 'inflight'"
        ).to_pylist()[0]
        assert list(rows.values()) == [400, 400, sum(range(400))]
