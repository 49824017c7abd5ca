"""Each package declares its public API in a sorted, complete ``__all__``."""

from __future__ import annotations

import importlib
import types

import pytest

PACKAGES = [
    "keelwatch",
    "keelwatch.alerts",
    "keelwatch.collector",
    "keelwatch.collector.server",
    "keelwatch.dashboards",
    "keelwatch.detectors",
    "keelwatch.store",
]


def _isort_key(name: str) -> tuple[int, str]:
    # constants, then classes, then functions (ruff's RUF022 order)
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


def _own(value: object) -> bool:
    if isinstance(value, types.ModuleType):
        return False
    if isinstance(value, type) or callable(value):
        return getattr(value, "__module__", "").startswith("keelwatch")
    return True


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_sorted_and_complete(name):
    package = importlib.import_module(name)
    exported = list(package.__all__)
    assert exported == sorted(exported, key=_isort_key)
    public = {
        member
        for member, value in vars(package).items()
        if not member.startswith("_") and member != "annotations" and _own(value)
    }
    assert public == set(exported)
