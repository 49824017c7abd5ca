"""Who may call what: the permission each route needs, and the caller behind a request.

``401`` means no valid key was presented (missing, unknown or revoked); ``403`` means the key
is valid but its role does not grant the route, or, in dev mode (no keys configured), that
the client is not on loopback. The project always comes from the key, never from the body.
"""

from __future__ import annotations

import base64
import hmac
import ipaddress
from dataclasses import dataclass

from starlette.requests import Request

from ._keys import ApiKey, KeyRing

__all__ = ["Caller", "Denied", "authorize", "permission_for"]

#: Routes anyone may call.
_OPEN = frozenset({"/healthz", "/readyz", "/ping", "/openapi.json", "/docs", "/redoc"})
_INGEST = frozenset({"/v1/predictions", "/v1/outcomes", "/v1/traces"})
#: POSTs that only read (a query in the body); every other POST under /v1/ writes.
_READ_POSTS = frozenset({"/v1/cost"})


@dataclass(frozen=True)
class Caller:
    """The project a request acts for and what it may do."""

    project: str
    key_id: str  # "" in dev mode or for the configured bootstrap key


class Denied(Exception):
    """The request is refused with ``status`` (401 or 403)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def permission_for(method: str, path: str) -> str | None:
    """``ingest``, ``read`` or ``admin`` for a route, ``None`` for open routes."""
    if path in _OPEN or path.startswith("/docs"):
        return None
    if path in _INGEST and method == "POST":
        return "ingest"
    if path in _READ_POSTS and method == "POST":
        return "read"
    if path.startswith("/v1/keys") or (method not in ("GET", "HEAD") and path.startswith("/v1/")):
        return "admin"
    return "read"


def presented_key(request: Request) -> str:
    """The key from ``Authorization: Bearer``, ClickHouse basic auth or ``X-ClickHouse-Key``."""
    auth = request.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":
        try:
            return base64.b64decode(value.strip(), validate=True).decode().partition(":")[2]
        except (ValueError, UnicodeDecodeError):
            return ""
    return request.headers.get("x-clickhouse-key", "")


def _loopback(request: Request) -> bool:
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "testclient"


def authorize(
    request: Request, keys: KeyRing, bootstrap_key: str, default_project: str
) -> Caller | None:
    """The caller of ``request``, ``None`` for open routes; raises :class:`Denied`.

    ``bootstrap_key`` (``KEELWATCH_API_KEY`` on the server) acts as an admin key for
    ``default_project``, so a deployment can create its first keys.
    """
    permission = permission_for(request.method, request.url.path)
    if permission is None:
        return None
    presented = presented_key(request)
    if bootstrap_key and hmac.compare_digest(presented.encode(), bootstrap_key.encode()):
        return Caller(default_project, "")
    record: ApiKey | None = keys.authenticate(presented) if presented else None
    if record is None:
        if not bootstrap_key and not keys.configured():
            if _loopback(request):
                return Caller(default_project, "")
            raise Denied(403, "no API keys configured: loopback clients only")
        raise Denied(401, "missing, unknown or revoked API key")
    if not record.allows(permission):
        raise Denied(403, f"a {record.role} key may not call {request.url.path} ({permission})")
    return Caller(record.project, record.key_id)
