"""Prediction ids: a random per-process prefix plus a counter, in hex.

The hot path only takes the next counter value (an int); the string ``<16 hex prefix><counter
hex>`` is made later, on the sender thread or when ``current_prediction_id()`` is asked. The prefix
is drawn from ``os.urandom`` at import and again in every forked child, so ids are unique across
processes; the counter is never reset, so a call that spans a fork cannot repeat an id either.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable


class IdSource:
    """Counter values for the hot path, formatted into ids on demand; ``reseed()`` after fork."""

    __slots__ = ("next_seq", "prefix")

    def __init__(self) -> None:
        self.prefix = ""
        # itertools.count advances atomically under the GIL: safe from any thread.
        self.next_seq = itertools.count(1).__next__
        self.reseed()

    def reseed(self) -> None:
        """A new random prefix (called in a forked child)."""
        self.prefix = os.urandom(8).hex()

    def format(self, seq: int) -> str:
        """The id of counter value ``seq`` in this process."""
        return f"{self.prefix}{seq:x}"

    def format_many(self, seqs: Iterable[int]) -> list[str]:
        """The ids of counter values ``seqs`` (as ``format``, without a call each)."""
        prefix = self.prefix
        return [f"{prefix}{seq:x}" for seq in seqs]

    def next(self) -> str:
        """A new id string."""
        return self.format(self.next_seq())


ids = IdSource()


def row_id(call_id: str, index: int) -> str:
    """The id of row ``index`` of a batch call whose call id is ``call_id``."""
    return f"{call_id}-{index}"
