"""Prediction ids: a random per-process prefix plus a counter, in hex.

Cheap on the hot path (one ``next()`` and one format) and unique across processes: the prefix is
drawn from ``os.urandom`` at import and again in every forked child.
"""

from __future__ import annotations

import itertools
import os


class IdSource:
    """Produces ``<16 hex prefix><counter hex>`` ids; ``reseed()`` after fork."""

    __slots__ = ("_counter", "_prefix")

    def __init__(self) -> None:
        self._prefix = ""
        self._counter = itertools.count()
        self.reseed()

    def reseed(self) -> None:
        """A new random prefix and a counter from zero (called in a forked child)."""
        self._prefix = os.urandom(8).hex()
        self._counter = itertools.count(1)

    def next(self) -> str:
        """A new id (thread-safe: ``itertools.count`` advances atomically under the GIL)."""
        return f"{self._prefix}{next(self._counter):x}"


ids = IdSource()


def row_id(call_id: str, index: int) -> str:
    """The id of row ``index`` of a batch call whose call id is ``call_id``."""
    return f"{call_id}-{index}"
