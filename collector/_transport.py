"""Transports: how a request body (gzip JSON or Arrow IPC) reaches the collector.

A transport is anything with ``send(path, body, headers) -> SendResult``; it raises
``TransportError`` when no HTTP status came back, and is called from up to ``max_in_flight``
sender threads at once. ``HttpTransport`` uses only the standard library; ``InMemoryTransport``
keeps requests for tests and answers with a scripted status.
"""

from __future__ import annotations

import email.utils
import gzip
import http.client
import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple, Protocol, runtime_checkable
from urllib.parse import urlsplit

from ._arrow import ARROW_STREAM, decode
from ._errors import TransportError


class SendResult(NamedTuple):
    """The collector's answer: HTTP status, Retry-After in seconds if given, and the body."""

    status: int
    retry_after: float | None = None
    body: bytes = b""


@runtime_checkable
class Transport(Protocol):
    """Delivers one request body to the collector."""

    def send(self, path: str, body: bytes, headers: Mapping[str, str]) -> SendResult:
        """POST ``body`` to ``path``; raise ``TransportError`` if no status was received."""
        ...


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), else ``None``."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


_MAX_IDLE = 16  # kept-alive connections kept for reuse (the sender's max_in_flight at most)
# What a request on a connection the server has since closed fails with (never a timeout).
_STALE = (
    BrokenPipeError,
    ConnectionResetError,
    ConnectionAbortedError,
    http.client.RemoteDisconnected,
)


class HttpTransport:
    """POSTs over kept-alive ``http.client`` connections, one per concurrent ``send`` (the
    sender has up to ``max_in_flight`` requests in flight); a connection is reopened after any
    failure, and a forked child never reuses its parent's."""

    def __init__(self, endpoint: str, timeout: float = 10.0) -> None:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"endpoint={endpoint!r}: must be an http(s) URL with a host")
        self.endpoint = endpoint.rstrip("/")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._base = parts.path.rstrip("/")
        self._timeout = timeout
        self._lock = threading.Lock()
        self._idle: list[http.client.HTTPConnection] = []
        self._pid = os.getpid()

    def send(self, path: str, body: bytes, headers: Mapping[str, str]) -> SendResult:
        """POST ``body`` to ``<endpoint><path>`` (safe to call from several threads)."""
        conn, reused = self._acquire()
        try:
            return self._post(conn, path, body, headers)
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            if not (reused and isinstance(exc, _STALE)):
                raise TransportError(self.endpoint + path, f"{type(exc).__name__}: {exc}") from exc
        # The server closed the kept-alive connection while it was idle (uvicorn does after 5 s):
        # try once more at once on a new one. Ingest is idempotent by prediction id, so a batch
        # that did arrive after all is stored once.
        conn = self._connect()
        try:
            return self._post(conn, path, body, headers)
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise TransportError(self.endpoint + path, f"{type(exc).__name__}: {exc}") from exc

    def _post(
        self, conn: http.client.HTTPConnection, path: str, body: bytes, headers: Mapping[str, str]
    ) -> SendResult:
        conn.request("POST", self._base + path, body=body, headers=dict(headers))
        resp = conn.getresponse()
        data = resp.read()
        retry_after = parse_retry_after(resp.getheader("Retry-After"))
        if resp.will_close:
            conn.close()
        else:
            self._release(conn)
        return SendResult(resp.status, retry_after, data)

    def _acquire(self) -> tuple[http.client.HTTPConnection, bool]:
        with self._lock:
            if self._pid != os.getpid():
                # Forked: these sockets are shared with the parent. Forget them without a
                # word on the wire (close() only drops this process's descriptor).
                stale, self._idle, self._pid = self._idle, [], os.getpid()
                for conn in stale:
                    conn.close()
            if self._idle:
                return self._idle.pop(), True
        return self._connect(), False

    def _release(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if self._pid == os.getpid() and len(self._idle) < _MAX_IDLE:
                self._idle.append(conn)
                return
        conn.close()

    def _connect(self) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        return cls(self._host, self._port, timeout=self._timeout)

    def close(self) -> None:
        """Close the idle kept-alive connections."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


class Request(NamedTuple):
    """One request seen by ``InMemoryTransport``."""

    path: str
    body: bytes
    headers: Mapping[str, str]

    @property
    def arrow(self) -> bool:
        """Whether the body is an Arrow IPC stream (else JSON)."""
        return self.headers.get("Content-Type") == ARROW_STREAM

    def json(self) -> Any:
        """The decoded JSON body (gunzipped when ``Content-Encoding: gzip``); an Arrow body as
        the JSON it stands for, ``{"records": [...]}`` (needs pyarrow)."""
        if self.arrow:
            return {"records": decode(self.body)}
        body = self.body
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        return json.loads(body)

    def records(self) -> list[dict[str, Any]]:
        """The ``records`` array of the body (decoded from Arrow when it is Arrow)."""
        records: list[dict[str, Any]] = self.json()["records"]
        return records


Responder = Callable[[str, bytes, Mapping[str, str]], SendResult]


class InMemoryTransport:
    """Keeps every request; answers 200, or what ``responses`` / ``handler`` say (tests)."""

    def __init__(
        self,
        responses: Iterable[SendResult | BaseException] = (),
        handler: Responder | None = None,
    ) -> None:
        self.requests: list[Request] = []
        self._responses = list(responses)
        self._handler = handler
        self._lock = threading.Lock()
        self.sent = threading.Condition(self._lock)

    def send(self, path: str, body: bytes, headers: Mapping[str, str]) -> SendResult:
        """Record the request, then answer from the script (or 200 when it is used up)."""
        with self._lock:
            self.requests.append(Request(path, body, dict(headers)))
            self.sent.notify_all()
            answer: SendResult | BaseException | None = (
                self._responses.pop(0) if self._responses else None
            )
        if isinstance(answer, BaseException):
            raise answer
        if answer is not None:
            return answer
        if self._handler is not None:
            return self._handler(path, body, headers)
        return SendResult(200, None, b'{"accepted": 0, "rejected": []}')

    def records(self, path: str = "/v1/predictions") -> list[dict[str, Any]]:
        """Every record sent to ``path``, in order (answered or not)."""
        with self._lock:
            requests = list(self.requests)
        return [r for req in requests if req.path == path for r in req.records()]
