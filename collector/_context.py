"""The prediction id of the call in progress, per thread and per asyncio task."""

from __future__ import annotations

import contextvars

CURRENT: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "keelwatch_prediction_id", default=None
)


def current_prediction_id() -> str | None:
    """The id of the innermost ``@monitor`` call in progress here, or ``None``.

    For a batch call (N rows) this is the call's id; row ``i`` is sent as ``f"{id}-{i}"``.
    """
    return CURRENT.get()
