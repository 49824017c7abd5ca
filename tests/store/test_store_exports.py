"""``__all__`` of the store and server packages lists every public name, sorted."""

from __future__ import annotations

import types

import pytest

from keelwatch import store
from keelwatch.collector import server


@pytest.mark.parametrize("module", [store, server])
def test_all_is_sorted_and_complete(module: types.ModuleType) -> None:
    public = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and getattr(value, "__module__", module.__name__).startswith(module.__name__)
    }
    public = {n for n in public if n != "annotations" and not n.startswith("KEELWATCH_")}
    # ruff's RUF022 order: CONSTANTS, then Classes, then functions.
    order = sorted(
        module.__all__, key=lambda n: (0 if n.isupper() else 1 if n[0].isupper() else 2, n)
    )
    assert order == list(module.__all__)
    assert public <= set(module.__all__)
