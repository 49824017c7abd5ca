"""What the routes share: configuration, store, keys, metrics, the writer, the detectors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import pyarrow as pa
from fastapi import HTTPException
from starlette.requests import Request

from keelwatch.store import Store

from ._auth import Caller
from ._config import ServerConfig
from ._keys import KeyRing
from ._metrics import ServerMetrics
from ._service import Monitoring

__all__ = ["AppState", "Writer", "caller", "state"]


class Writer(Protocol):
    """Where accepted batches go; raises ``HTTPException(503)`` only when it cannot take them."""

    def write(self, table: str, data: pa.Table, token: str) -> None: ...

    def close(self) -> None: ...


@dataclass
class AppState:
    config: ServerConfig
    store: Store
    keys: KeyRing
    metrics: ServerMetrics
    monitoring: Monitoring
    writer: Writer


def state(request: Request) -> AppState:
    """The app's shared state (set by the lifespan)."""
    current: AppState | None = getattr(request.app.state, "keelwatch", None)
    if current is None:
        raise HTTPException(503, "the server is starting or stopping")
    return current


def caller(request: Request) -> Caller:
    """Who is calling (set by the authentication middleware)."""
    found: Caller | None = getattr(request.state, "caller", None)
    if found is None:  # open routes never ask
        raise HTTPException(401, "no caller")
    return found
