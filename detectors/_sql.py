"""The SQL that aggregates feature values in the store, for a window and for a baseline.

Current values come from ``predictions`` (a model, a time window, optionally a version, a
deployment slot and a segment of tag values), reference values from ``baseline_values``
(numeric, one row per value) or the baseline profile (categorical counts). Every query handles
many features in one pass (``ARRAY JOIN`` over the feature map, ``GROUP BY`` feature); only
counts and a few sums leave the engine. Non-finite values are dropped, as Evidently drops NaN
and ±inf before every test.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from keelwatch.store import Store

__all__ = [
    "CURRENT_NUM",
    "CURRENT_ONE",
    "FEW_VALUES_CAP",
    "REFERENCE_NUM",
    "REFERENCE_ONE",
    "WHERE_WINDOW",
    "NumericSummary",
    "Segment",
    "Window",
    "capped_value_counts",
    "category_counts",
    "current_source",
    "distinct_counts",
    "format_segment",
    "micros",
    "numeric_summaries",
    "parse_segment",
    "segment_of",
    "value_counts",
    "window_count",
]


#: Tag ``(key, value)`` pairs a window is restricted to (every pair must match), sorted by key.
Segment = tuple[tuple[str, str], ...]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ESCAPE = str.maketrans({"%": "%25", ",": "%2C", "=": "%3D"})
_UNESCAPE = {"%25": "%", "%2C": ",", "%3D": "="}
_ESCAPED = re.compile("|".join(_UNESCAPE))


def micros(moment: datetime) -> int:
    """Microseconds since the epoch, exactly (a naive time is local, as ``timestamp()`` reads it).

    Integer arithmetic, so a boundary taken from a stored ``ts`` (count windows) is bound
    exactly, with no float rounding between it and the predictions stamped on it.
    """
    aware = moment if moment.tzinfo else moment.astimezone()
    return (aware - _EPOCH) // timedelta(microseconds=1)


def segment_of(value: Mapping[str, str] | Iterable[tuple[str, str]] | None) -> Segment:
    """A segment from a mapping or ``(key, value)`` pairs: checked, sorted by key.

    Raises ``ValueError`` naming the problem: a key that is empty or given twice, or a key or
    value that is not a string.
    """
    pairs = list(value.items()) if isinstance(value, Mapping) else list(value or ())
    seen: set[str] = set()
    out = []
    for pair in pairs:
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
            raise ValueError(f"segment: expected (key, value) pairs, got {pair!r}")
        key, val = pair
        if not isinstance(key, str) or not isinstance(val, str):
            raise ValueError(f"segment: tag keys and values must be strings, got {pair!r}")
        if not key:
            raise ValueError("segment: a tag key is empty")
        if key in seen:
            raise ValueError(f"segment: tag {key!r} is given twice")
        seen.add(key)
        out.append((key, val))
    return tuple(sorted(out))


def format_segment(segment: Segment) -> str:
    """The canonical text of a segment, ``key=value`` pairs sorted by key, comma-separated.

    ``%``, ``,`` and ``=`` inside keys and values are percent-escaped, so the text parses back
    (:func:`parse_segment`) and one segment always has one spelling in ``drift_results``.
    """
    return ",".join(f"{k.translate(_ESCAPE)}={v.translate(_ESCAPE)}" for k, v in segment)


def _unescape(text: str) -> str:
    return _ESCAPED.sub(lambda m: _UNESCAPE[m.group(0)], text)


def parse_segment(text: str) -> Segment:
    """The segment of a canonical text (:func:`format_segment`); ``""`` is no segment."""
    if not text:
        return ()
    pairs = []
    for item in text.split(","):
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"segment: {item!r} is not key=value")
        pairs.append((_unescape(key), _unescape(value)))
    return segment_of(pairs)


@dataclass(frozen=True)
class Window:
    """Which predictions a detector looks at: ``[start, end)`` of one model.

    ``version``, ``slot`` and ``segment`` narrow it when set (``segment``: tag pairs that must
    all match, normalised by :func:`segment_of`). ``count`` is what the window was built for,
    ``0`` for a time window, ``N`` for a window of ``N`` predictions (``_windows``); the
    detectors read only the time range.
    """

    model: str
    start: datetime
    end: datetime
    project: str = "default"
    version: str = ""
    slot: str = ""
    segment: Segment = ()
    count: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "segment", segment_of(self.segment))
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 0:
            raise ValueError(f"count: must be a whole number >= 0, got {self.count!r}")

    @property
    def kind(self) -> str:
        """``"count"`` for a window of ``count`` predictions, else ``"time"``."""
        return "count" if self.count else "time"

    def params(self) -> dict[str, Any]:
        return {
            "p": self.project,
            "m": self.model,
            "t0": micros(self.start),
            "t1": micros(self.end),
            "ver": self.version,
            "slot": self.slot,
            "seg_k": [k for k, _ in self.segment],
            "seg_v": [v for _, v in self.segment],
        }


# The segment test is one ``arrayAll`` over two bound arrays: no SQL text depends on the tags
# asked for, and with no segment the constant ``empty`` short-circuits it.
WHERE_WINDOW = (
    "project = {p:String} AND model = {m:String} "
    "AND ts >= fromUnixTimestamp64Micro({t0:Int64}, 'UTC') "
    "AND ts < fromUnixTimestamp64Micro({t1:Int64}, 'UTC') "
    "AND ({ver:String} = '' OR version = {ver:String}) "
    "AND ({slot:String} = '' OR slot = {slot:String}) "
    "AND (empty({seg_k:Array(String)}) OR arrayAll((k, v) -> mapContains(tags, k) "
    "AND tags[k] = v, {seg_k:Array(String)}, {seg_v:Array(String)}))"
)
_NAMES = "{names:Array(String)}"
#: ``(feature, x)`` rows of the window's numeric features named in ``{names}``. The map's
#: ``keys`` subcolumn keeps its LowCardinality type through ARRAY JOIN (``mapKeys`` makes plain
#: strings), so the name filter and GROUP BY feature compare dictionary positions: at 1M rows x
#: 21 features that halves the cost of reading ten features' values (0.45 -> 0.27 s).
CURRENT_NUM = (
    "SELECT k AS feature, v AS x FROM predictions "
    "ARRAY JOIN num.keys AS k, num.values AS v "
    f"WHERE {WHERE_WINDOW} AND k IN {_NAMES} AND isFinite(v)"
)
#: ``(feature, x)`` rows of the baseline's numeric features named in ``{names}``.
REFERENCE_NUM = (
    "SELECT feature, value AS x FROM baseline_values "
    f"WHERE baseline_id = {{b:String}} AND feature IN {_NAMES} AND isFinite(value)"
)
#: ``x`` rows of the window's numeric feature ``{f}`` (the first value under the key, as
#: ``num[f]``, found by its position in the LowCardinality keys: 0.19 s against 0.33 s).
CURRENT_ONE = (
    "SELECT num.values[indexOf(num.keys, {f:String})] AS x FROM predictions "
    f"WHERE {WHERE_WINDOW} AND has(num.keys, {{f:String}}) AND isFinite(x)"
)
#: ``x`` rows of the baseline's numeric feature ``{f}`` (one primary-key range).
REFERENCE_ONE = (
    "SELECT value AS x FROM baseline_values "
    "WHERE baseline_id = {b:String} AND feature = {f:String} AND isFinite(value)"
)
_CURRENT_CAT = (
    "SELECT k AS feature, v AS x FROM predictions "
    "ARRAY JOIN cat.keys AS k, cat.values AS v "
    f"WHERE {WHERE_WINDOW} AND k IN {_NAMES}"
)


def names_param(names: Sequence[str]) -> list[str]:
    """Feature names as a bound ``Array(String)`` parameter (a constant: no per-row parsing)."""
    return [str(n) for n in names]


#: ``CURRENT_ONE`` as a ``(feature, x)`` source.
_CURRENT_ONE_NAMED = f"SELECT {{f:String}} AS feature, x FROM ({CURRENT_ONE})"


def current_source(names: Sequence[str]) -> tuple[str, dict[str, Any]]:
    """The ``(feature, x)`` source of the window's numeric ``names`` and the parameters it adds.

    A lone feature looks its key up in each row's map, cheaper than unnesting the whole map
    (1M rows x 21 features: 0.13 against 0.19 s for its value counts); several share one
    ``ARRAY JOIN`` read.
    """
    if len(names) == 1:
        return _CURRENT_ONE_NAMED, {"f": str(names[0])}
    return CURRENT_NUM, {"names": names_param(names)}


def source_params(window: Window, baseline_id: str, names: Sequence[str]) -> dict[str, Any]:
    return {**window.params(), "b": baseline_id, "names": names_param(names)}


def window_count(store: Store, window: Window) -> int:
    """Predictions in the window."""
    rows = store.query(
        f"SELECT count() AS n FROM predictions WHERE {WHERE_WINDOW}", window.params()
    ).to_pylist()
    return int(rows[0]["n"])


@dataclass(frozen=True)
class NumericSummary:
    """Count, range, moments and a capped distinct count of one numeric feature on one side."""

    count: int
    min: float
    max: float
    mean: float
    std: float
    skew: float
    distinct: int  # exact up to ``distinct_cap``, ``distinct_cap + 1`` above


def numeric_summaries(
    store: Store, source: str, params: Mapping[str, Any], distinct_cap: int = 20
) -> dict[str, NumericSummary]:
    """Per-feature summaries of ``source`` (``CURRENT_NUM`` or ``REFERENCE_NUM``)."""
    rows = store.query(
        "SELECT feature, count() AS n, min(x) AS lo, max(x) AS hi, avg(x) AS mean, "
        f"stddevPop(x) AS std, skewPop(x) AS skew, uniqUpTo({int(distinct_cap)})(x) AS u "
        f"FROM ({source}) GROUP BY feature",
        params,
    ).to_pylist()
    return {
        str(r["feature"]): NumericSummary(
            int(r["n"]),
            float(r["lo"]),
            float(r["hi"]),
            float(r["mean"]),
            float(r["std"]),
            float(r["skew"]) if r["skew"] == r["skew"] else 0.0,
            int(r["u"]),
        )
        for r in rows
    }


def distinct_counts(
    store: Store, sources: Sequence[str], params: Mapping[str, Any], cap: int | None = None
) -> dict[str, int]:
    """Distinct values per feature over the union of ``sources`` (exact, or up to ``cap``)."""
    union = " UNION ALL ".join(f"SELECT feature, x FROM ({s})" for s in sources)
    counter = "uniqExact(x)" if cap is None else f"uniqUpTo({int(cap)})(x)"
    rows = store.query(
        f"SELECT feature, {counter} AS u FROM ({union}) GROUP BY feature", params
    ).to_pylist()
    return {str(r["feature"]): int(r["u"]) for r in rows}


def value_counts(
    store: Store, source: str, params: Mapping[str, Any]
) -> dict[str, dict[float, int]]:
    """Counts of each distinct value per feature of a numeric ``source`` (few-valued features)."""
    rows = store.query(
        f"SELECT feature, x, count() AS c FROM ({source}) GROUP BY feature, x", params
    ).to_pylist()
    out: dict[str, dict[float, int]] = {}
    for row in rows:
        out.setdefault(str(row["feature"]), {})[float(row["x"])] = int(row["c"])
    return out


#: Most distinct window values kept per few-valued feature (more: the counts are not kept).
FEW_VALUES_CAP = 21


def capped_value_counts(
    store: Store, source: str, params: Mapping[str, Any], cap: int = FEW_VALUES_CAP
) -> dict[str, dict[float, int] | None]:
    """Like :func:`value_counts`, but a feature with more than ``cap`` distinct values maps to
    ``None`` (its counts are not sent back: a few-valued reference feature may have become
    continuous in the window)."""
    keep = int(cap) + 1  # one more than the cap tells "more than cap" apart
    rows = store.query(
        f"SELECT feature, groupArray({keep})(x) AS xs, groupArray({keep})(c) AS cs, "
        f"count() AS distinct FROM (SELECT feature, x, count() AS c FROM ({source}) "
        "GROUP BY feature, x) GROUP BY feature",
        params,
    ).to_pylist()
    out: dict[str, dict[float, int] | None] = {}
    for row in rows:
        counts = zip(row["xs"], row["cs"], strict=True)
        capped = int(row["distinct"]) > cap
        out[str(row["feature"])] = None if capped else {float(x): int(c) for x, c in counts}
    return out


def category_counts(
    store: Store, window: Window, names: Sequence[str]
) -> dict[str, dict[str, int]]:
    """Counts of each category of the window's categorical ``names``."""
    if not names:
        return {}
    rows = store.query(
        f"SELECT feature, x, count() AS c FROM ({_CURRENT_CAT}) GROUP BY feature, x",
        {**window.params(), "names": names_param(names)},
    ).to_pylist()
    out: dict[str, dict[str, int]] = {name: {} for name in names}
    for row in rows:
        out[str(row["feature"])][str(row["x"])] = int(row["c"])
    return out
