"""Numbered migrations: applied once, in order, on empty and populated stores."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from keelwatch.store import MIGRATIONS, EmbeddedStore, Migration, _schema, migrate


def tables(store: EmbeddedStore) -> set[str]:
    names = store.query("SELECT name FROM system.tables WHERE database = currentDatabase()")
    return set(names.column("name").to_pylist())


def test_versions_are_increasing_and_unique() -> None:
    versions = [m.version for m in MIGRATIONS]
    assert versions == sorted(set(versions))
    assert versions[0] == 1


def test_empty_store_gets_every_migration_once(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "s")
    try:
        assert migrate(store) == [m.version for m in MIGRATIONS]
        assert {"predictions", "outcomes", "baselines", "schema_migrations"} <= tables(store)
        assert migrate(store) == []
        applied = store.query("SELECT version FROM schema_migrations FINAL ORDER BY version")
        assert applied.column("version").to_pylist() == [m.version for m in MIGRATIONS]
    finally:
        store.close()


def test_populated_store_keeps_its_rows_and_gets_new_migrations(
    store: EmbeddedStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.insert("audit_log", pa.table({"actor": ["a", "b"], "action": ["x", "y"]}))
    extra = Migration(
        max(m.version for m in MIGRATIONS) + 1,
        "a test table",
        ("CREATE TABLE IF NOT EXISTS migration_probe (x UInt8) ENGINE = MergeTree ORDER BY x",),
    )
    monkeypatch.setattr(_schema, "MIGRATIONS", (*MIGRATIONS, extra))
    assert migrate(store) == [extra.version]
    assert migrate(store) == []
    assert "migration_probe" in tables(store)
    assert store.query("SELECT count() AS n FROM audit_log").column("n")[0].as_py() == 2


def test_reopened_store_is_not_migrated_again(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "s")
    migrate(store)
    store.close()
    store = EmbeddedStore(tmp_path / "s")
    try:
        assert migrate(store) == []
    finally:
        store.close()
