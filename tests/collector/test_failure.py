"""Fail-open: whatever the collector does, the decorated function behaves as if undecorated."""

from __future__ import annotations

import http.server
import socket
import threading
import time

import pytest

from keelwatch.collector import InMemoryTransport, SendResult, TransportError
from keelwatch.collector._transport import HttpTransport, parse_retry_after


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_connection_refused_never_reaches_the_caller(make_client):
    client = make_client(
        endpoint=f"http://127.0.0.1:{_closed_port()}", transport=None,
        max_retries=1, max_backoff=0.01,
    )  # fmt: skip
    f = client.monitor(model="m")(lambda x: x + 1)
    assert [f(i) for i in range(20)] == list(range(1, 21))
    assert client.flush(5) is False
    assert client.stats().dropped == {"send_failed": 20}


def test_5xx_is_retried_until_accepted(make_client):
    transport = InMemoryTransport([SendResult(500), TransportError("x", "reset"), SendResult(502)])
    client = make_client(transport=transport, max_backoff=0.01)
    f = client.monitor(model="m")(lambda x: x)
    for i in range(3):
        f(i)
    assert client.flush(5)
    assert len(transport.requests) == 4
    assert transport.requests[0].body == transport.requests[3].body
    assert client.stats().sent == 3 and client.stats().dropped == {}


def test_4xx_is_not_retried_and_counted(make_client):
    transport = InMemoryTransport([SendResult(400, None, b'{"detail": "bad"}')])
    client = make_client(transport=transport, max_backoff=0.01)
    f = client.monitor(model="m")(lambda x: x)
    f(1)
    f(2)
    assert client.flush(5) is False
    assert len(transport.requests) == 1
    assert client.stats().dropped == {"rejected": 2}
    f(3)
    assert client.flush(5)


def test_429_waits_for_retry_after_on_the_injected_clock(make_client):
    clock = FakeClock()
    transport = InMemoryTransport([SendResult(429, 30.0)])
    client = make_client(transport=transport, clock=clock, max_backoff=0.01)
    client.monitor(model="m")(lambda: 1)()
    assert client.flush(0.3) is False  # Retry-After (30 s) has not passed on the clock
    assert len(transport.requests) == 1
    clock.now += 31
    assert client.flush(5)
    assert len(transport.requests) == 2


def test_503_retry_after_header_is_read_over_http(collector):
    collector.mode = 503
    collector.retry_after = "7"
    result = HttpTransport(collector.url).send("/v1/predictions", b"{}", {})
    assert result.status == 503 and result.retry_after == 7.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert parse_retry_after("soon") is None


def test_slow_collector_does_not_slow_the_caller(collector, make_client):
    collector.mode = "slow"
    client = make_client(endpoint=collector.url, transport=None, timeout=0.2, max_retries=0)
    f = client.monitor(model="m")(lambda x: x)
    started = time.perf_counter()
    for i in range(50):
        f(i)
    assert time.perf_counter() - started < 0.5
    assert client.flush(3) is False
    assert client.stats().dropped == {"send_failed": 50}
    collector.release.set()


def test_garbage_answers_are_survived(collector, make_client):
    collector.mode = "garbage"
    client = make_client(endpoint=collector.url, transport=None, max_retries=0)
    f = client.monitor(model="m")(lambda x: x)
    assert f(1) == 1
    assert client.flush(3) is False
    assert client.stats().dropped == {"send_failed": 1}

    transport = InMemoryTransport(handler=lambda *_: SendResult(200, None, b"\xff not json"))
    other = make_client(transport=transport)
    other.monitor(model="m")(lambda: 2)()
    assert other.flush(3) and other.stats().sent == 1


def test_user_exception_is_recorded_and_reraised_unchanged(make_client):
    transport = InMemoryTransport()
    client = make_client(transport=transport)
    boom = ValueError("boom")

    @client.monitor(model="m")
    def f(x):
        raise boom

    with pytest.raises(ValueError) as info:
        f(1)
    assert info.value is boom
    assert client.flush(5)
    [record] = transport.records()
    assert record["error"] == "ValueError: boom" and record["output"] is None


def test_sdk_bugs_in_user_callables_do_not_escape(make_client):
    transport = InMemoryTransport()
    client = make_client(transport=transport)
    f = client.monitor(model="m", output=lambda r: 1 / 0)(lambda x: x)
    assert f(3) == 3
    assert client.flush(5)
    assert transport.records()[0]["output"] is None


def test_full_queue_drops_and_counts_every_record(make_client):
    gate = threading.Event()

    def slow(path, body, headers):
        gate.wait(5)
        return SendResult(200)

    client = make_client(transport=InMemoryTransport(handler=slow), max_queue_size=10, batch_size=1)
    f = client.monitor(model="m")(lambda x: x)
    for i in range(200):
        assert f(i) == i
    gate.set()
    assert client.flush(5)
    stats = client.stats()
    assert stats.dropped["queue_full"] > 0
    assert stats.sent + stats.dropped["queue_full"] == 200


def test_calls_after_shutdown_pass_through_and_are_counted(make_client):
    client = make_client()
    f = client.monitor(model="m")(lambda x: x)
    f(1)
    client.shutdown()
    assert f(2) == 2
    assert client.stats().dropped == {"shutdown": 1}


def test_a_kept_alive_connection_closed_by_the_server_is_reopened_at_once():
    connections = []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, then close without saying so (idle timeout)

        def log_message(self, *args):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            connections.append(self.client_address)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")
            self.close_connection = True

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        transport = HttpTransport(f"http://127.0.0.1:{server.server_address[1]}")
        assert transport.send("/v1/predictions", b"{}", {}).status == 200
        assert transport.send("/v1/predictions", b"{}", {}).status == 200
        assert len(connections) == 2 and connections[0] != connections[1]
        transport.close()
    finally:
        server.shutdown()
        server.server_close()
