"""Data quality of a window against the baseline's schema and profile, in a few SQL passes.

Per baseline feature: the share of the window's predictions missing it (key absent, or a
non-finite number), for numeric features the share of values outside the baseline's
``[min, max]``, for categorical ones the share of values in categories the baseline never saw,
whether it is constant in the window, and how many values arrived with the wrong type (a
numeric feature in the ``cat`` map, a categorical one in the ``num`` map). Per window: baseline
features that never appear, features that appear but are not in the baseline, repeated
``prediction_id``s (rows beyond the first per id: retries the store has not merged yet, or an
SDK reusing ids), the prediction volume against the model's recent history and the freshness of
its newest prediction.

Volume: the counts of the ``history`` windows of the same length just before the window
(``[start − i·L, start − (i − 1)·L)``, ``i = 1..history``) of the same project, model, version
and slot come from the per-minute rollup ``predictions_1m`` (a minute belongs to the history
window holding its start, so history is exact for minute-aligned windows). Windows with no
prediction are left out: before a model's first prediction there is no history, and an outage is
reported by its own window (``z`` far below 0, ``stale``) rather than widening every later
window's spread. Over the ``n`` windows left, ``expected`` is their mean and ``std`` their sample
standard deviation (``ddof = 1``); ``z = (current − expected) / std`` (``±inf`` when ``std`` is 0
and ``current`` differs, 0 when equal; ``None`` under two windows). ``anomaly`` when
``|z| >= 3`` and ``n >= min_history``. A tag segment is not in the rollup, so a segment window
counts its history from ``predictions`` itself (exact boundaries); a window of ``N`` predictions
(``Window.count``) has its size fixed by construction and gets no volume check.

Freshness: ``max(ts)`` of the model's predictions (same version and slot, any segment) before the
window's end; ``staleness_s`` is the window end minus that time, ``stale`` when it exceeds
``max_staleness_s`` (default the window's length) or when the model has no prediction at all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple

from keelwatch.store import Store

from ._baseline import Baseline, FeatureProfile
from ._sql import WHERE_WINDOW, Window

__all__ = ["FeatureQuality", "Freshness", "Quality", "Volume", "quality"]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class FeatureQuality:
    feature: str
    kind: str
    present: int
    missing_rate: float
    out_of_range_share: float  # numeric: outside the baseline's [min, max]
    unseen_share: float  # categorical: categories the baseline never saw
    constant: bool
    wrong_type: int = 0  # values that arrived in the other map (numeric as text, or the reverse)


@dataclass(frozen=True)
class Volume:
    """The window's prediction count against the counts of the windows just before it."""

    current: int
    expected: float | None  # mean of the history windows that had data
    std: float | None  # their sample standard deviation (ddof=1)
    z: float | None
    history: int  # history windows that had data
    anomaly: bool


@dataclass(frozen=True)
class Freshness:
    """How long before the window's end the model's newest prediction was made."""

    last_prediction: datetime | None
    staleness_s: float | None
    max_staleness_s: float
    stale: bool


@dataclass(frozen=True)
class Quality:
    rows: int
    duplicate_ids: int
    missing_features: tuple[str, ...]
    unexpected_features: tuple[str, ...]
    features: tuple[FeatureQuality, ...]
    wrong_types: tuple[str, ...] = ()  # baseline features with values of the other kind
    volume: Volume | None = None  # None for a window of N predictions
    freshness: Freshness | None = None


# ``c`` per history window that had data: ``i = 0`` is ``[t0 − L, t0)``, ``1`` the one before.
# The history range is the primary-key prefix (project, model[, version, slot], minute | ts).
_ROLLUP_COUNTS = (
    "SELECT intDiv({t0:Int64} - toInt64(toUnixTimestamp(minute)) * 1000000 - 1, {len:Int64}) "
    "AS i, sum(predictions) AS c FROM predictions_1m "
    "WHERE project = {p:String} AND model = {m:String} "
    "AND ({ver:String} = '' OR version = {ver:String}) "
    "AND ({slot:String} = '' OR slot = {slot:String}) "
    "AND minute >= fromUnixTimestamp64Micro({h0:Int64}, 'UTC') "
    "AND minute < fromUnixTimestamp64Micro({t0:Int64}, 'UTC') GROUP BY i"
)
# A segment's history from the raw rows: the window's own filter moved back over the history.
_SEGMENT_COUNTS = (
    "SELECT intDiv({t0:Int64} - toUnixTimestamp64Micro(ts) - 1, {len:Int64}) AS i, "
    "count() AS c FROM predictions WHERE "
    + WHERE_WINDOW.replace("{t0:Int64}", "{h0:Int64}").replace("{t1:Int64}", "{t0:Int64}")
    + " GROUP BY i"
)
_HISTORY = "SELECT count() AS k, avg(c) AS mean, stddevSamp(c) AS std FROM ({counts}) WHERE c > 0"
_NEWEST = (
    "SELECT count() AS n, toUnixTimestamp64Micro(max(ts)) AS t FROM predictions "
    "WHERE project = {p:String} AND model = {m:String} "
    "AND ts < fromUnixTimestamp64Micro({t1:Int64}, 'UTC') "
    "AND ({ver:String} = '' OR version = {ver:String}) "
    "AND ({slot:String} = '' OR slot = {slot:String})"
)


def _positive_int(name: str, value: object, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(f"{name}: must be a whole number >= {least}, got {value!r}")
    return value


def _volume(
    store: Store, window: Window, current: int, history: int, min_history: int
) -> Volume | None:
    if window.kind == "count":
        return None
    params = window.params()
    length = params["t1"] - params["t0"]
    if length <= 0:
        raise ValueError(f"window: end must be after start, got {window.start} .. {window.end}")
    counts = _SEGMENT_COUNTS if window.segment else _ROLLUP_COUNTS
    row = store.query(
        _HISTORY.format(counts=counts),
        {**params, "len": length, "h0": params["t0"] - history * length},
    ).to_pylist()[0]
    k = int(row["k"])
    if k == 0:
        return Volume(current, None, None, None, 0, False)
    mean = float(row["mean"])
    std = float(row["std"]) if k > 1 else None
    z: float | None = None
    if std is not None:
        gap = current - mean
        z = gap / std if std > 0 else (0.0 if gap == 0 else math.copysign(math.inf, gap))
    anomaly = z is not None and abs(z) >= 3 and k >= min_history
    return Volume(current, mean, std, z, k, anomaly)


def _freshness(store: Store, window: Window, max_staleness_s: float | None) -> Freshness:
    limit = (
        (window.end - window.start).total_seconds()
        if max_staleness_s is None
        else float(max_staleness_s)
    )
    if not limit > 0 or not math.isfinite(limit):
        raise ValueError(f"max_staleness_s: must be a finite number > 0, got {max_staleness_s!r}")
    params = window.params()
    row = store.query(_NEWEST, params).to_pylist()[0]
    if not int(row["n"]):
        return Freshness(None, None, limit, True)
    newest = int(row["t"])
    staleness = (params["t1"] - newest) / 1e6
    last = _EPOCH + timedelta(microseconds=newest)
    return Freshness(last, staleness, limit, staleness > limit)


class _Numeric(NamedTuple):
    """A numeric feature's values in the window: all, finite, finite outside the baseline's range,
    distinct up to 2 (0, 1, or 2 for "more than one"), and one of them."""

    entries: int
    n: int
    outside: int
    distinct: int
    one: float | None

    def merge(self, other: _Numeric) -> _Numeric:
        """Counts of two disjoint sets of rows; one value per side keeps ``distinct`` exact."""
        if not self.entries or not other.entries:
            return self if self.entries else other
        same = self.one == other.one or (self.one != self.one and other.one != other.one)
        distinct = 2 if self.distinct > 1 or other.distinct > 1 or not same else 1
        return _Numeric(
            self.entries + other.entries,
            self.n + other.n,
            self.outside + other.outside,
            distinct,
            self.one,
        )


# The window's rows whose ``num`` map has its usual layout (the same keys in the same order, as
# one model's calls send them) are aggregated position by position on the map's value array with
# -ForEach combinators: no ARRAY JOIN and no per-value name lookup. Rows with any other layout go
# through the general query, and the two are merged per feature (``_Numeric.merge``).
_LAYOUT = f"SELECT num.keys AS k FROM predictions WHERE {WHERE_WINDOW} LIMIT 1"
_BY_POSITION = (
    "SELECT count() AS rows, "
    "sumForEach(arrayMap(x -> toUInt64(isFinite(x)), xs)) AS n, "
    "sumForEach(arrayMap((x, lo, hi) -> toUInt64(isFinite(x) AND (x < lo OR x > hi)), xs, "
    "{lo:Array(Float64)}, {hi:Array(Float64)})) AS outside, "
    "uniqUpToForEach(1)(xs) AS u, anyForEach(xs) AS one "
    f"FROM (SELECT num.values AS xs FROM predictions WHERE {WHERE_WINDOW} "
    "AND num.keys = {layout:Array(String)})"
)
# transform() is a hash lookup per value; indexOf() scanned the names per value (50x slower at
# 100 features).
_GENERAL = (
    "SELECT k AS feature, count() AS entries, countIf(isFinite(v)) AS n, "
    "countIf(isFinite(v) AND (v < transform(k, {names:Array(String)}, "
    "{lo:Array(Float64)}, nan) OR v > transform(k, {names:Array(String)}, "
    "{hi:Array(Float64)}, nan))) AS outside, uniqUpTo(1)(v) AS u, any(v) AS one "
    "FROM predictions ARRAY JOIN num.keys AS k, num.values AS v "
    f"WHERE {WHERE_WINDOW} AND num.keys != {{layout:Array(String)}} GROUP BY k"
)


def _ranges(names: list[str], numeric: list[FeatureProfile]) -> dict[str, list[float]]:
    """Baseline ``[min, max]`` per name, NaN (never outside) for names the baseline lacks."""
    nan = float("nan")
    by = {p.name: (p.min, p.max) for p in numeric}
    bounds = [by.get(k, (None, None)) for k in names]
    return {
        "lo": [nan if lo is None else float(lo) for lo, _ in bounds],
        "hi": [nan if hi is None else float(hi) for _, hi in bounds],
    }


def _numeric_stats(
    store: Store, params: dict[str, Any], rows: int, numeric: list[FeatureProfile]
) -> dict[str, _Numeric]:
    """Per key of the window's ``num`` maps: counts of all, finite and out-of-range values."""
    first = store.query(_LAYOUT, params).column("k").to_pylist()
    if not rows or not first:
        return {}
    layout = [str(k) for k in first[0]]
    row = store.query(
        _BY_POSITION, {**params, "layout": layout, **_ranges(layout, numeric)}
    ).to_pylist()[0]
    out: dict[str, _Numeric] = {}
    if row["rows"] and layout:
        for i, name in enumerate(layout):
            one = row["one"][i]
            out[name] = _Numeric(
                int(row["rows"]),
                int(row["n"][i]),
                int(row["outside"][i]),
                int(row["u"][i]),
                None if one is None else float(one),
            )
    if int(row["rows"]) < rows:
        names = [p.name for p in numeric]
        for r in store.query(
            _GENERAL, {**params, "layout": layout, "names": names, **_ranges(names, numeric)}
        ).to_pylist():
            found = _Numeric(
                int(r["entries"]), int(r["n"]), int(r["outside"]), int(r["u"]), float(r["one"])
            )
            name = str(r["feature"])
            out[name] = out[name].merge(found) if name in out else found
    return out


def quality(
    store: Store,
    baseline: Baseline,
    window: Window,
    *,
    history: int = 24,
    min_history: int = 6,
    max_staleness_s: float | None = None,
) -> Quality:
    """Data-quality checks of ``window`` against ``baseline``.

    Args:
        history: how many windows of the same length before this one the volume check reads.
        min_history: how many of them must have had predictions before a volume anomaly is
            flagged.
        max_staleness_s: the newest prediction may be this old at the window's end before the
            model is ``stale`` (default: the window's length).
    """
    _positive_int("history", history, 1)
    _positive_int("min_history", min_history, 0)
    params = window.params()
    head = store.query(
        "SELECT count() AS n, count() - uniqExact(prediction_id) AS dup "
        f"FROM predictions WHERE {WHERE_WINDOW}",
        params,
    ).to_pylist()[0]
    rows = int(head["n"])
    numeric = [p for p in baseline.features if p.kind == "numeric"]
    stats = _numeric_stats(store, params, rows, numeric)
    categories = {
        str(r["feature"]): {str(x): int(c) for x, c in zip(r["xs"], r["cs"], strict=True)}
        for r in store.query(
            "SELECT feature, groupArray(x) AS xs, groupArray(c) AS cs FROM ("
            " SELECT k AS feature, v AS x, count() AS c FROM predictions "
            " ARRAY JOIN cat.keys AS k, cat.values AS v "
            f" WHERE {WHERE_WINDOW} GROUP BY k, v) GROUP BY feature",
            params,
        ).to_pylist()
    }
    features = []
    for p in baseline.features:
        if p.kind == "numeric":
            r = stats.get(p.name) or _Numeric(0, 0, 0, 0, None)
            present, outside = r.n, r.outside
            unseen, constant = 0, present > 0 and r.distinct <= 1
            wrong = sum(categories.get(p.name, {}).values())
        else:
            counts = categories.get(p.name, {})
            present = sum(counts.values())
            outside = 0
            unseen = sum(c for x, c in counts.items() if x not in p.categories)
            constant = len(counts) == 1
            wrong = stats[p.name].entries if p.name in stats else 0
        features.append(
            FeatureQuality(
                p.name,
                p.kind,
                present,
                1.0 - present / rows if rows else 0.0,
                outside / present if present else 0.0,
                unseen / present if present else 0.0,
                constant,
                wrong,
            )
        )
    known = {p.name for p in baseline.features}
    seen = set(stats) | set(categories)
    return Quality(
        rows,
        int(head["dup"]),
        tuple(sorted(known - seen)) if rows else (),
        tuple(sorted(seen - known)),
        tuple(features),
        tuple(f.feature for f in features if f.wrong_type),
        _volume(store, window, rows, history, min_history),
        _freshness(store, window, max_staleness_s),
    )
