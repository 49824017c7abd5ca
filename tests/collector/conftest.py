"""Fixtures: a fresh default client and environment per test, client factories, and a real
stdlib HTTP collector on 127.0.0.1 that records what it receives."""

from __future__ import annotations

import collections
import contextlib
import http.server
import json
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from keelwatch.collector import Client, InMemoryTransport, _global, _log
from keelwatch.collector._transport import Request


@pytest.fixture(autouse=True)
def _clean_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith("KEELWATCH_"):
            monkeypatch.delenv(name)
    _global._reset()
    _log.reset()
    yield
    _global._reset()
    _log.reset()


@pytest.fixture
def make_client() -> Iterator[Callable[..., Client]]:
    """Build a ``Client`` (in-memory transport, no metrics, short timers); shut down after."""
    clients: list[Client] = []

    def make(**kwargs: Any) -> Client:
        kwargs.setdefault("transport", InMemoryTransport())
        kwargs.setdefault("metrics_registry", False)
        kwargs.setdefault("flush_interval", 0.05)
        kwargs.setdefault("shutdown_timeout", 1.0)
        client = Client(**kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.shutdown(timeout=2.0)


class Collector:
    """A stdlib HTTP server recording every prediction id it acknowledges.

    ``mode`` scripts the answer: ``"ok"``, an int status, ``"garbage"`` (not HTTP), ``"slow"``.
    """

    def __init__(self, port: int = 0) -> None:
        self.ids: collections.Counter[str] = collections.Counter()
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.mode: Any = "ok"
        self.retry_after: str | None = None
        self.release = threading.Event()
        self._port = port
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def start(self) -> None:
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                owner.requests.append((self.path, dict(self.headers), body))
                mode = owner.mode
                if mode == "garbage":
                    self.wfile.write(b"\x00\x01 not http at all\r\n\r\n")
                    return
                if mode == "slow":
                    owner.release.wait(5)
                if isinstance(mode, int):
                    self.send_response(mode)
                    if owner.retry_after is not None:
                        self.send_header("Retry-After", owner.retry_after)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"{}")
                    return
                records = decode_body(dict(self.headers), body)
                if self.path == "/v1/predictions":
                    owner.ids.update(r["prediction_id"] for r in records)
                answer = json.dumps({"accepted": len(records), "rejected": []}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self._port), Handler)
        self._server.daemon_threads = True
        self._port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self.release.set()
            self._server.shutdown()
            self._server.server_close()
            assert self._thread is not None
            self._thread.join(5)
            self._server = None

    def records(self) -> list[dict[str, Any]]:
        out = []
        for path, headers, body in self.requests:
            if path == "/v1/predictions":
                with contextlib.suppress(ValueError):
                    out.extend(decode_body(headers, body))
        return out


def decode_body(headers: dict[str, str], body: bytes) -> list[dict[str, Any]]:
    """The records of a request body: gzip JSON, plain JSON or an Arrow IPC stream."""
    return Request("", body, headers).records()


@pytest.fixture
def collector() -> Iterator[Collector]:
    server = Collector()
    yield server
    server.stop()


@pytest.fixture
def make_collector() -> Iterator[Callable[..., Collector]]:
    """Start collectors (``port=`` to come back on an address); all stopped after the test."""
    servers: list[Collector] = []

    def make(port: int = 0) -> Collector:
        server = Collector(port)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()
