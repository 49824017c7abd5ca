"""API keys: hashed at rest, per project and role, revocation within the cache TTL."""

from __future__ import annotations

from keelwatch.collector.server._keys import KeyRing, hash_key
from keelwatch.store import EmbeddedStore


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_key_is_stored_hashed_only(store: EmbeddedStore) -> None:
    new = KeyRing(store).create("shop", "ingest", "checkout service")
    stored = store.query("SELECT * FROM api_keys").to_pylist()
    assert len(stored) == 1
    assert new.key not in str(stored)
    assert stored[0]["key_hash"] == hash_key(new.key)
    assert new.key.startswith(f"kw_{new.record.key_id}_")
    assert len(new.key) > 40


def test_authenticate_matches_only_the_exact_key(store: EmbeddedStore) -> None:
    ring = KeyRing(store)
    new = ring.create("shop", "read")
    found = ring.authenticate(new.key)
    assert found is not None
    assert (found.project, found.role) == ("shop", "read")
    assert ring.authenticate(new.key[:-1] + ("A" if new.key[-1] != "A" else "B")) is None
    assert ring.authenticate(f"kw_{new.record.key_id}_") is None
    assert ring.authenticate("kw_000000000000_x") is None
    assert ring.authenticate("") is None


def test_revoked_key_stops_within_ttl_on_another_ring(store: EmbeddedStore) -> None:
    clock = Clock()
    issuer = KeyRing(store)
    other = KeyRing(store, ttl_s=2.0, clock=clock)  # e.g. another server process
    new = issuer.create("shop", "admin")
    assert other.authenticate(new.key) is not None
    issuer.revoke(new.record.key_id)
    clock.now = 1.0
    assert other.authenticate(new.key) is not None  # still cached
    clock.now = 2.5
    assert other.authenticate(new.key) is None
    listed = {k.key_id: k for k in issuer.records()}
    assert listed[new.record.key_id].revoked_at is not None


def test_roles_grant_permissions(store: EmbeddedStore) -> None:
    ring = KeyRing(store)
    grants = {
        role: {p for p in ("ingest", "read", "admin") if ring.create("p", role).record.allows(p)}
        for role in ("ingest", "read", "admin")
    }
    assert grants == {
        "ingest": {"ingest"},
        "read": {"read"},
        "admin": {"ingest", "read", "admin"},
    }


def test_bad_role_or_project_is_refused(store: EmbeddedStore) -> None:
    import pytest

    ring = KeyRing(store)
    with pytest.raises(ValueError, match="role"):
        ring.create("p", "superuser")
    with pytest.raises(ValueError, match="project"):
        ring.create("", "read")
    with pytest.raises(KeyError):
        ring.revoke("nope")
