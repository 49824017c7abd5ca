"""API keys: per project, with a role, stored hashed, checked in constant time.

A key reads ``kw_<key_id>_<secret>``: ``key_id`` (12 hex digits) finds the row, the secret
carries 256 random bits. Only ``sha256(key)`` is stored; with that much entropy a plain hash
cannot be reversed by guessing, so no salt or slow KDF is needed. The table is cached in
memory and re-read after ``ttl_s`` seconds, so a revoked key stops working within that time.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Literal

import pyarrow as pa

from keelwatch.store import Store, StoreError

__all__ = ["ROLES", "ApiKey", "KeyRing", "NewKey", "Role", "hash_key"]

Role = Literal["ingest", "read", "admin"]
#: What each role may do; ``admin`` may do everything.
ROLES: dict[str, frozenset[str]] = {
    "ingest": frozenset({"ingest"}),
    "read": frozenset({"read"}),
    "admin": frozenset({"ingest", "read", "admin"}),
}
_PREFIX = "kw_"
_log = logging.getLogger("keelwatch.server")
_LIST = (
    "SELECT key_id, project, role, key_hash, name, created_at, revoked_at "
    "FROM api_keys FINAL ORDER BY created_at"
)


def hash_key(key: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class ApiKey:
    """A key's record (never the key itself)."""

    key_id: str
    project: str
    role: str
    name: str
    created_at: datetime
    revoked_at: datetime | None
    key_hash: str = ""

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def allows(self, permission: str) -> bool:
        """Whether this key's role grants ``permission`` (``ingest``, ``read``, ``admin``)."""
        return self.active and permission in ROLES.get(self.role, frozenset())


@dataclass(frozen=True)
class NewKey:
    """A key just created: ``key`` is shown once and never stored."""

    key: str
    record: ApiKey


def _check(value: str, field: str) -> str:
    if not value or len(value) > 128 or not value.isprintable():
        raise ValueError(f"{field}: must be 1..128 printable characters, got {value!r}")
    return value


class KeyRing:
    """Creates, lists, revokes and authenticates keys held in the store's ``api_keys`` table."""

    def __init__(
        self, store: Store, ttl_s: float = 2.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, ApiKey] = {}
        self._loaded_at: float | None = None

    def _write(self, record: ApiKey) -> None:
        self.store.insert(
            "api_keys",
            pa.table(
                {
                    "key_id": [record.key_id],
                    "project": [record.project],
                    "role": [record.role],
                    "key_hash": [record.key_hash],
                    "name": [record.name],
                    "created_at": pa.array([record.created_at], pa.timestamp("ms", tz="UTC")),
                    "revoked_at": pa.array([record.revoked_at], pa.timestamp("ms", tz="UTC")),
                    "updated_at": pa.array(
                        [datetime.now(timezone.utc)], pa.timestamp("us", tz="UTC")
                    ),
                }
            ),
        )
        self.invalidate()

    def create(self, project: str, role: str, name: str = "") -> NewKey:
        """A new key for ``project`` with ``role``; the returned key is not stored anywhere."""
        if role not in ROLES:
            raise ValueError(f"role: must be one of {sorted(ROLES)}, got {role!r}")
        _check(project, "project")
        key_id = secrets.token_hex(6)
        key = f"{_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        record = ApiKey(
            key_id, project, role, name, datetime.now(timezone.utc), None, hash_key(key)
        )
        self._write(record)
        return NewKey(key, record)

    def records(self, project: str | None = None) -> list[ApiKey]:
        """Every key's record (revoked ones too), oldest first."""
        return [k for k in self._load().values() if project is None or k.project == project]

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key; it stops authenticating within ``ttl_s`` seconds on every server."""
        current = self._read().get(key_id)
        if current is None:
            raise KeyError(key_id)
        if current.revoked_at is not None:
            return current
        revoked = ApiKey(**{**current.__dict__, "revoked_at": datetime.now(timezone.utc)})
        self._write(revoked)
        return revoked

    def configured(self) -> bool:
        """Whether any active key exists (otherwise the server runs in loopback-only dev mode)."""
        return any(k.active for k in self._load().values())

    def authenticate(self, presented: str) -> ApiKey | None:
        """The active key record matching ``presented``, else ``None``."""
        if not presented.startswith(_PREFIX):
            return None
        key_id = presented[len(_PREFIX) :].partition("_")[0]
        record = self._load().get(key_id)
        digest = hash_key(presented)
        # Compare even when the id is unknown, so timing does not tell which ids exist.
        expected = record.key_hash if record else "0" * len(digest)
        if hmac.compare_digest(digest, expected) and record and record.active:
            return record
        return None

    def invalidate(self) -> None:
        """Forget the cache: the next lookup reads the store."""
        with self._lock:
            self._loaded_at = None

    def _load(self) -> dict[str, ApiKey]:
        with self._lock:
            now = self._clock()
            if self._loaded_at is None or now - self._loaded_at >= self.ttl_s:
                try:
                    self._keys = self._read()
                except StoreError:
                    if self._loaded_at is None and not self._keys:
                        raise
                    # The store is down: keep serving the keys known a moment ago.
                    _log.warning("cannot re-read api_keys; using the cached keys")
                self._loaded_at = now
            return self._keys

    def _read(self) -> dict[str, ApiKey]:
        rows = self.store.query(_LIST).to_pylist()
        return {
            row["key_id"]: ApiKey(
                row["key_id"],
                row["project"],
                row["role"],
                row["name"],
                row["created_at"],
                row["revoked_at"],
                row["key_hash"],
            )
            for row in rows
        }
