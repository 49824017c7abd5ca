"""Windows beyond one time range: by prediction count and per tag value.

A window is always a time range ``[start, end)`` in the end (``Window``); this module finds the
ranges. Count windows are resolved in SQL over ``ts``: the boundaries are timestamps of
predictions, and every prediction stamped exactly on a boundary belongs to the window that
starts there (windows are half-open), so a window holds exactly ``N`` predictions unless
several share a boundary timestamp. ``run_id`` names a run by what it looked at, so a
backfill (``_backfill``) run again stores nothing twice.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import asdict, replace
from datetime import timedelta
from itertools import pairwise
from typing import Any

from keelwatch.store import Store

from ._config import DriftConfig
from ._sql import WHERE_WINDOW, Window, format_segment, micros

__all__ = [
    "MAX_SEGMENT_VALUES",
    "MAX_WINDOWS",
    "count_windows",
    "latest_count_window",
    "parse_every",
    "run_id",
    "segment_values",
    "segment_windows",
    "time_windows",
]

#: Most windows one backfill (or one window split) may produce; a longer history is split
#: into several backfills, so a typo such as ``every=1s`` over a year fails at once.
MAX_WINDOWS = 10_000
#: Default cap on the distinct values of a tag that get a window each (``segment_windows``).
MAX_SEGMENT_VALUES = 50

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_every(value: str | float | timedelta) -> timedelta:
    """A window length: a ``timedelta``, seconds, or text such as ``90s``, ``15m``, ``1h``, ``1d``.

    Raises ``ValueError`` (naming ``every``) for anything else, zero or a negative length.
    """
    if isinstance(value, timedelta):
        every = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ValueError(f"every: must be a finite number of seconds, got {value!r}")
        every = timedelta(seconds=float(value))
    elif isinstance(value, str) and (match := _DURATION.match(value.strip())):
        every = timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])
    else:
        raise ValueError(f"every: not a duration: {value!r} (use e.g. 30s, 15m, 1h, 1d)")
    if every < timedelta(microseconds=1):
        raise ValueError(f"every: must be positive, got {value!r}")
    return every


def _check_count(count: int) -> int:
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count: must be a whole number >= 1, got {count!r}")
    return count


def time_windows(window: Window, every: timedelta, max_windows: int = MAX_WINDOWS) -> list[Window]:
    """``window``'s range cut into consecutive windows of ``every``; the last may be shorter.

    The windows tile ``[start, end)``: each starts where the previous ended.
    """
    every = parse_every(every)
    span = window.end - window.start
    if span <= timedelta(0):
        return []
    n = math.ceil(span / every)
    if n > max_windows:
        raise ValueError(
            f"every: {every} cuts the range into {n} windows, more than {max_windows}; "
            "use a longer every or a shorter range"
        )
    bounds = [window.start + i * every for i in range(n)] + [window.end]
    return [replace(window, start=a, end=b, count=0) for a, b in pairwise(bounds)]


def count_windows(
    store: Store, window: Window, count: int, max_windows: int = MAX_WINDOWS
) -> list[Window]:
    """``window``'s range cut into consecutive windows of ``count`` predictions each.

    The windows tile ``[start, end)``. Boundaries are the timestamps of predictions number
    ``count + 1``, ``2 * count + 1``, ... in ``ts`` order; predictions sharing a boundary
    timestamp all go to the window that starts there, and the last window holds what is left
    (at most ``count`` predictions unless ties moved some in). No window is empty; a range
    without predictions has no windows.
    """
    _check_count(count)
    rows = store.query(
        "SELECT t, i FROM (SELECT ts AS t, row_number() OVER (ORDER BY ts) AS i "
        f"FROM predictions WHERE {WHERE_WINDOW}) "
        "WHERE (i - 1) % {n:UInt64} = 0 ORDER BY i LIMIT {lim:UInt64}",
        {**window.params(), "n": count, "lim": max_windows + 1},
    ).to_pylist()
    if not rows:
        return []
    if len(rows) > max_windows:
        raise ValueError(
            f"count: windows of {count} predictions cut the range into more than "
            f"{max_windows} windows; use a larger count or a shorter range"
        )
    first = rows[0]["t"]
    # Distinct and after the first prediction: a boundary equal to an earlier one, or to the
    # first timestamp, would leave an empty window.
    inner = sorted({r["t"] for r in rows[1:] if r["t"] > first})
    bounds = [window.start, *inner, window.end]
    return [replace(window, start=a, end=b, count=count) for a, b in pairwise(bounds)]


def latest_count_window(store: Store, window: Window, count: int) -> Window:
    """The window of the ``count`` most recent predictions before ``window.end``.

    It starts at the timestamp of the ``count``-th most recent prediction no earlier than
    ``window.start``, and so also holds every other prediction stamped that instant. With fewer
    predictions it starts at the earliest (all of them); with none it is empty (start = end).
    """
    _check_count(count)
    params = window.params()
    rows = store.query(
        f"SELECT ts FROM predictions WHERE {WHERE_WINDOW} ORDER BY ts DESC "
        "LIMIT 1 OFFSET {off:UInt64}",
        {**params, "off": count - 1},
    ).to_pylist()
    if not rows:
        rows = store.query(
            f"SELECT min(ts) AS first, count() AS n FROM predictions WHERE {WHERE_WINDOW}",
            params,
        ).to_pylist()
        if not rows[0]["n"]:
            return replace(window, start=window.end, count=count)
        return replace(window, start=rows[0]["first"], count=count)
    return replace(window, start=rows[0]["ts"], count=count)


def segment_values(
    store: Store, window: Window, key: str, max_values: int = MAX_SEGMENT_VALUES
) -> list[str]:
    """The distinct values of tag ``key`` in ``window``, most predictions first.

    Predictions without the tag are left out. More than ``max_values`` values raise
    ``ValueError`` rather than silently leaving some out.
    """
    if not isinstance(key, str) or not key:
        raise ValueError("by_tag: a tag key is required")
    if any(k == key for k, _ in window.segment):
        raise ValueError(f"by_tag: tag {key!r} is already fixed by the segment")
    if isinstance(max_values, bool) or not isinstance(max_values, int) or max_values < 1:
        raise ValueError(f"max_values: must be a whole number >= 1, got {max_values!r}")
    rows = store.query(
        "SELECT tags[{tag:String}] AS v, count() AS c FROM predictions "
        f"WHERE {WHERE_WINDOW} AND mapContains(tags, {{tag:String}}) "
        "GROUP BY v ORDER BY c DESC, v LIMIT {lim:UInt64}",
        {**window.params(), "tag": key, "lim": max_values + 1},
    ).to_pylist()
    if len(rows) > max_values:
        raise ValueError(
            f"by_tag: tag {key!r} has more than {max_values} values in the window; "
            "raise max_values or narrow the segment"
        )
    return [str(r["v"]) for r in rows]


def segment_windows(
    store: Store, window: Window, key: str, max_values: int = MAX_SEGMENT_VALUES
) -> list[Window]:
    """One window per value of tag ``key`` in ``window`` (its segment plus ``key=value``)."""
    return [
        replace(window, segment=(*window.segment, (key, value)))
        for value in segment_values(store, window, key, max_values)
    ]


#: DriftConfig fields that change how a run computes, not what it finds.
RESULT_NEUTRAL = frozenset({"exact_budget"})


def run_id(window: Window, baseline_id: str, config: DriftConfig) -> str:
    """A run id that is the same whenever the same window is compared the same way.

    It covers everything that decides a run's results except the data: project, model, version,
    slot, segment, exact range, window kind and size, baseline and drift configuration.
    """
    key: list[Any] = [
        window.project,
        window.model,
        window.version,
        window.slot,
        format_segment(window.segment),
        micros(window.start),
        micros(window.end),
        window.count,
        baseline_id,
        {k: v for k, v in asdict(config).items() if k not in RESULT_NEUTRAL},
    ]
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]
