"""Shared fixtures.

chDB runs one engine per process: a test that opens an embedded store must close it before
another opens one, which the ``store`` fixture does.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from keelwatch.store import EmbeddedStore, migrate


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EmbeddedStore]:
    """A migrated embedded store in a fresh directory, closed after the test."""
    opened = EmbeddedStore(tmp_path / "store")
    migrate(opened)
    try:
        yield opened
    finally:
        opened.close()


class LiveServer:
    """An ASGI app served by uvicorn on a free loopback port, in a thread."""

    def __init__(self, app: object) -> None:
        import threading

        import uvicorn

        self._server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")  # type: ignore[arg-type]
        )
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        import time

        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("test server did not start")
            time.sleep(0.02)
        sock = self._server.servers[0].sockets[0]
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)


@pytest.fixture
def live_server() -> type[LiveServer]:
    """``with live_server(app) as server: server.url``: serve an app for the test's duration."""
    return LiveServer
