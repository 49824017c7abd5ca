"""The prediction id of the call in progress, per thread and per asyncio task.

The context variable holds the id's counter value; the string is made only when asked for.
"""

from __future__ import annotations

import contextvars

from ._ids import ids

CURRENT: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "keelwatch_prediction_seq", default=None
)


def current_prediction_id() -> str | None:
    """The id of the innermost ``@monitor`` call in progress here, or ``None``.

    For a batch call (N rows) this is the call's id; row ``i`` is sent as ``f"{id}-{i}"``.
    """
    seq = CURRENT.get()
    return None if seq is None else ids.format(seq)
