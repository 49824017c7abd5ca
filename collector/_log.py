"""Rate-limited logging: the SDK reports a failure once, then at most once a minute per kind."""

from __future__ import annotations

import logging
import threading
import time

logger = logging.getLogger("keelwatch.collector")

_INTERVAL_S = 60.0
_lock = threading.Lock()
_last: dict[str, float] = {}
_suppressed: dict[str, int] = {}


def warn_limited(key: str, msg: str, *args: object) -> None:
    """Log ``msg`` at WARNING unless ``key`` was logged in the last minute (then count it)."""
    now = time.monotonic()
    with _lock:
        last = _last.get(key)
        if last is not None and now - last < _INTERVAL_S:
            _suppressed[key] = _suppressed.get(key, 0) + 1
            return
        _last[key] = now
        skipped = _suppressed.pop(key, 0)
    if skipped:
        msg += " (%d similar messages suppressed)"
        args = (*args, skipped)
    logger.warning(msg, *args)


def reset() -> None:
    """Forget what was logged (tests)."""
    with _lock:
        _last.clear()
        _suppressed.clear()
