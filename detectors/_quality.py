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
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from keelwatch.store import Store

from ._baseline import Baseline
from ._sql import WHERE_WINDOW, Window
from ._values import KeyValues, key_values

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


def quality(
    store: Store,
    baseline: Baseline,
    window: Window,
    *,
    history: int = 24,
    min_history: int = 6,
    max_staleness_s: float | None = None,
    values: Mapping[str, KeyValues] | None = None,
) -> Quality:
    """Data-quality checks of ``window`` against ``baseline``.

    Args:
        history: how many windows of the same length before this one the volume check reads.
        min_history: how many of them must have had predictions before a volume anomaly is
            flagged.
        max_staleness_s: the newest prediction may be this old at the window's end before the
            model is ``stale`` (default: the window's length).
        values: the window's per-key numeric counts when already read (a drift run on the
            fine grid returns them as ``DriftRun.window_values``); used only when they cover
            exactly the window's rows, else read again.
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
    stats = (
        values
        if values is not None and all(v.entries == rows for v in values.values())
        else key_values(store, params, rows, numeric)
    )
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
            r = stats.get(p.name) or KeyValues(0, 0, 0, 0, None)
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
