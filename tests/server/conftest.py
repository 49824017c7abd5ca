"""Fixtures for the collector server: an app over the test's store, a real server in a thread."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import uvicorn

from keelwatch.collector.server import ServerConfig, create_app
from keelwatch.store import EmbeddedStore, Retention

with warnings.catch_warnings():
    # Starlette's TestClient warns about httpx at import; the client itself works.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


def make_config(**overrides: Any) -> ServerConfig:
    """A server configuration without the scheduler, nor TTLs (six ALTERs per app start)."""
    overrides.setdefault("retention", Retention(0, 0, 0))
    return ServerConfig(detect_interval_s=0, **overrides)


@pytest.fixture
def server_thread() -> type[ServerThread]:
    """The class that runs an app on a real port: ``with server_thread(app) as srv: srv.url``."""
    return ServerThread


@pytest.fixture
def served(store: EmbeddedStore) -> Callable[..., ServerThread]:
    """``with served(**config) as srv``: the app over the test's store on a real port."""

    def make(**config: Any) -> ServerThread:
        return ServerThread(create_app(make_config(**config), store=store))

    return make


@pytest.fixture
def client(store: EmbeddedStore) -> Iterator[TestClient]:
    """A test client over an app in dev mode (no keys, loopback only) on the test's store."""
    with TestClient(create_app(make_config(), store=store)) as test_client:
        yield test_client


@pytest.fixture
def app_client(store: EmbeddedStore) -> Callable[..., TestClient]:
    """``app_client(peer=..., **config)``: a test client (use it in ``with``) over the test's
    store; ``peer`` is the client address the app sees."""

    def make(peer: str = "testclient", **config: Any) -> TestClient:
        return TestClient(create_app(make_config(**config), store=store), client=(peer, 50000))

    return make


class ServerThread:
    """A real uvicorn server on 127.0.0.1 with a free port, in a daemon thread."""

    def __init__(self, app: Any) -> None:
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("server did not start")
            self.thread.join(0.01)
        return self

    @property
    def port(self) -> int:
        return int(self.server.servers[0].sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
