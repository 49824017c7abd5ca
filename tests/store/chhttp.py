"""ClickHouse's HTTP interface, read-write, over a chDB session: a ClickHouse server for tests.

No ClickHouse server runs on the test machines, so this endpoint puts the embedded engine behind
the HTTP protocol that clickhouse-connect (and through it ``ClickHouseStore``) speaks. Every
statement runs on the real engine; only the HTTP framing is done here, as the server does it:

- the statement is the ``query`` URL parameter, the body, or both joined by a newline, or the
  ``query`` field of a multipart form (clickhouse-connect's choice for long parameters);
- ``INSERT ... FORMAT <name>`` followed by data: the data goes to a file that the same
  statement reads ``FROM INFILE``, so the engine's own input format parses it;
- a trailing ``FORMAT`` clause, else ``default_format``, else ``TabSeparated``, is the output;
- ``param_<name>`` binds ``{name:Type}``; ``database`` is the current database;
- any other parameter that is not transport (``session_id``, ``query_id``...) is a setting of
  that statement: the endpoint's own session ``SET``s it and resets it (to the endpoint's
  profile or ``DEFAULT``) on the next request without it, so no setting leaks into another;
- ``Content-Encoding`` gzip, deflate, zstd and lz4 request bodies;
- one statement per request; errors carry the engine's message, ``X-ClickHouse-Exception-Code``
  and a 4xx/5xx status.

Left out, as clickhouse-connect copes without them: HTTP sessions (all requests share one engine
session), compressed responses, ``client_protocol_version`` (the client probes it and falls back),
progress and summary headers, read-only GET requests and authentication (any user is accepted).
"""

from __future__ import annotations

import contextlib
import gzip
import re
import socket
import threading
import uuid
import zlib
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

__all__ = ["ClickHouseError", "ClickHouseHTTP", "Statement", "parse_request"]

#: URL parameters of the HTTP layer itself, never settings of the statement.
# fmt: off
TRANSPORT = frozenset({
    "buffer_size", "client_protocol_version", "compress", "database", "decompress",
    "default_format", "password", "query", "query_id", "quota_key", "role", "session_check",
    "session_id", "session_timeout", "user", "wait_end_of_query",
})
# fmt: on
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_INSERT_DATA = re.compile(
    rb"\s*(INSERT\s+INTO\s.*?)\s+FORMAT\s+([A-Za-z0-9_]+)[ \t]*\r?\n?", re.IGNORECASE | re.DOTALL
)
_FORMAT = re.compile(r"\s+FORMAT\s+([A-Za-z0-9_]+)\s*;?\s*$", re.IGNORECASE)
_CODE = re.compile(r"Code: (\d+)\.")
#: Exception codes the server answers with a 4xx (its ``exceptionCodeToHTTPStatus``); else 500.
_STATUS = {62: 400, 46: 404, 47: 404, 60: 404, 81: 404, 115: 404, 164: 403}


class ClickHouseError(Exception):
    """A request the endpoint answers with ClickHouse exception ``code``."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.status = _STATUS.get(code, 500)


@dataclass(frozen=True)
class Statement:
    """One request as the engine runs it."""

    sql: str
    fmt: str
    database: str = "default"
    params: dict[str, str] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)
    data: bytes | None = None  # for ``INSERT ... FORMAT fmt``: the rows in that format


def _decode(body: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    if encoding == "zstd":
        from backports import zstd  # clickhouse-connect's own zstd dependency

        return bytes(zstd.decompress(body))
    if encoding == "lz4":
        import lz4.frame

        return bytes(lz4.frame.decompress(body))
    raise ClickHouseError(1, f"Unknown Content-Encoding {encoding!r}")


def _form(content_type: str, body: bytes) -> dict[str, str]:
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    fields: dict[str, str] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if name and part.get_filename() is None and isinstance(payload, bytes):
            fields[str(name)] = payload.decode("utf-8")
    return fields


def _check_single(sql: str) -> None:
    """Refuse a second statement (``;`` outside literals, quoted names and comments)."""
    i, n, ended = 0, len(sql), False
    while i < n:
        ch = sql[i]
        if ch in "'\"`":
            end = i + 1
            while end < n and sql[end] != ch:
                end += 2 if sql[end] == "\\" else 1
            i = end + 1
        elif sql.startswith("--", i) or ch == "#":
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            i = n if end < 0 else end + 2
        elif ch == ";":
            ended, i = True, i + 1
        elif ch.isspace():
            i += 1
        elif ended:
            raise ClickHouseError(62, "Syntax error: Multi-statements are not allowed")
        else:
            i += 1


def parse_request(
    url_params: dict[str, str], content_type: str, body: bytes, method: str = "POST"
) -> Statement:
    """The statement an HTTP request carries (``body`` already decoded)."""
    params = dict(url_params)
    if content_type.lower().startswith("multipart/form-data"):
        params.update(_form(content_type, body))
        body = b""
    head = params.get("query", "").encode()
    text = head + b"\n" + body if head and body else head or body
    if not text.strip():
        raise ClickHouseError(62, "Empty query")
    fmt = params.get("default_format", "TabSeparated")
    data: bytes | None = None
    insert = _INSERT_DATA.match(text)
    if insert is not None and method == "POST":
        sql, fmt, data = insert.group(1).decode(), insert.group(2).decode(), text[insert.end() :]
    else:
        sql = text.decode()
        found = _FORMAT.search(sql)
        if found:
            fmt, sql = found.group(1), sql[: found.start()]
    _check_single(sql)
    settings = {}
    for name, value in params.items():
        if name in TRANSPORT or name.startswith("param_"):
            continue
        settings[_setting(name)] = value
    return Statement(
        sql=sql.strip().rstrip(";"),
        fmt=fmt,
        database=params.get("database") or "default",
        params={k[len("param_") :]: v for k, v in params.items() if k.startswith("param_")},
        settings=settings,
        data=data,
    )


def _setting(name: str) -> str:
    if not _NAME.match(name):
        raise ClickHouseError(115, f"Unknown setting {name!r}")
    return name


def _literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class _Engine:
    """The endpoint's own chDB session; statements run one at a time."""

    def __init__(self, path: Path, spool: Path, profile: dict[str, str]) -> None:
        from chdb import session as chdb_session

        self._session = chdb_session.Session(str(path))
        self._spool = spool
        self._lock = threading.Lock()
        self._database = "default"
        self._profile = dict(profile)
        self._settings: dict[str, str] = {}
        try:
            for name, value in self._profile.items():
                self._query(f"SET {_setting(name)} = {_literal(value)}", "TabSeparated")
            self.timezone = self._query("SELECT timezone()", "TabSeparated").decode().strip()
        except ClickHouseError:
            self._session.close()
            raise

    def _query(self, sql: str, fmt: str, params: dict[str, str] | None = None) -> bytes:
        try:
            result = self._session.query(sql, fmt, params=params or None)
        except Exception as exc:
            message = str(exc)
            found = _CODE.search(message)
            raise ClickHouseError(int(found.group(1)) if found else 1001, message) from exc
        return bytes(result.bytes()) if result is not None else b""

    def _prepare(self, database: str, settings: dict[str, str]) -> None:
        if database != self._database:
            self._query(f"USE `{database.replace('`', '``')}`", "TabSeparated")
            self._database = database
        for name in [n for n in self._settings if n not in settings]:
            base = _literal(self._profile[name]) if name in self._profile else "DEFAULT"
            self._query(f"SET {name} = {base}", "TabSeparated")
            del self._settings[name]
        for name, value in settings.items():
            if self._settings.get(name) != value:
                self._settings.pop(name, None)
                self._query(f"SET {name} = {_literal(value)}", "TabSeparated")
                self._settings[name] = value

    def run(self, statement: Statement) -> bytes:
        with self._lock:
            self._prepare(statement.database, statement.settings)
            if statement.data is None:
                return self._query(statement.sql, statement.fmt, statement.params)
            path = self._spool / f"{uuid.uuid4().hex}.{statement.fmt.lower()}"
            path.write_bytes(statement.data)
            try:
                sql = f"{statement.sql} FROM INFILE {_literal(str(path))} FORMAT {statement.fmt}"
                self._query(sql, "TabSeparated", statement.params)
            finally:
                path.unlink()
            return b""

    def close(self) -> None:
        with self._lock:
            self._session.close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.lock:
            self.server.connections.discard(self.connection)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: failures reach the client, which is what the tests read

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0], 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _handle(self) -> None:
        url = urlsplit(self.path)
        body = self._body()
        if url.path in ("/ping", "/ping/"):
            self._reply(200, b"Ok.\n", {"Content-Type": "text/plain; charset=UTF-8"})
            return
        if url.path != "/":
            self._reply(404, b"There is no handle " + url.path.encode() + b"\n", {})
            return
        engine = self.server.engine
        query_id = ""
        try:
            params = dict(parse_qsl(url.query, keep_blank_values=True))
            query_id = params.get("query_id") or str(uuid.uuid4())
            raw = _decode(body, self.headers.get("Content-Encoding", ""))
            statement = parse_request(
                params, self.headers.get("Content-Type", ""), raw, self.command
            )
            output = engine.run(statement)
        except Exception as exc:
            error = exc if isinstance(exc, ClickHouseError) else ClickHouseError(1001, repr(exc))
            self._reply(
                error.status,
                f"{error}\n".encode(),
                {
                    "X-ClickHouse-Exception-Code": str(error.code),
                    "X-ClickHouse-Query-Id": query_id,
                    "Content-Type": "text/plain; charset=UTF-8",
                },
            )
            return
        text = statement.fmt.startswith(("TabSeparated", "TSV", "CSV", "JSON"))
        self._reply(
            200,
            output,
            {
                "Content-Type": "text/plain; charset=UTF-8" if text else "application/octet-stream",
                "X-ClickHouse-Format": statement.fmt,
                "X-ClickHouse-Query-Id": query_id,
                "X-ClickHouse-Timezone": engine.timezone,
            },
        )


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, engine: _Engine) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.engine = engine
        self.lock = threading.Lock()
        #: Open keep-alive connections, shut on stop so their threads end with the server.
        self.connections: set[socket.socket] = set()


class ClickHouseHTTP:
    """``with ClickHouseHTTP(engine_path, spool_dir) as ch: ch.url``: serve the engine at
    ``engine_path`` (the embedded store's directory: one engine per process) on a free port.

    ``profile``: settings of every request unless it sets them itself, as a server's user
    profile (``session_timezone`` makes ``timezone()`` and time parsing those of a server in
    that zone).
    """

    def __init__(
        self, engine_path: str | Path, spool: str | Path, profile: dict[str, str] | None = None
    ) -> None:
        self._spool = Path(spool)
        self._spool.mkdir(parents=True, exist_ok=True)
        self._engine = _Engine(Path(engine_path), self._spool, profile or {})
        self._server = _Server(self._engine)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._stopped = False

    def run(self, sql: str) -> bytes:
        """Run ``sql`` on the endpoint's session directly (set-up, outside HTTP)."""
        return self._engine.run(Statement(sql, "TabSeparated"))

    def __enter__(self) -> ClickHouseHTTP:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop serving, drop open connections and close the session (again is a no-op)."""
        if self._stopped:
            return
        self._stopped = True
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()
        with self._server.lock:
            for conn in self._server.connections:
                with contextlib.suppress(OSError):  # the client closed it first
                    conn.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=10)
        self._engine.close()
