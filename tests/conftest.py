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
