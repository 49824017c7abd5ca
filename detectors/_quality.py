"""Data quality of a window against the baseline's schema and profile, in two SQL passes.

Per baseline feature: the share of the window's predictions missing it (key absent, or a
non-finite number), for numeric features the share of values outside the baseline's
``[min, max]``, for categorical ones the share of values in categories the baseline never saw,
and whether it is constant in the window. Per window: baseline features that never appear,
features that appear but are not in the baseline, and repeated ``prediction_id``s (rows beyond
the first per id: retries the store has not merged yet, or an SDK reusing ids).
"""

from __future__ import annotations

from dataclasses import dataclass

from keelwatch.store import Store

from ._baseline import Baseline
from ._sql import WHERE_WINDOW, Window

__all__ = ["FeatureQuality", "Quality", "quality"]


@dataclass(frozen=True)
class FeatureQuality:
    feature: str
    kind: str
    present: int
    missing_rate: float
    out_of_range_share: float  # numeric: outside the baseline's [min, max]
    unseen_share: float  # categorical: categories the baseline never saw
    constant: bool


@dataclass(frozen=True)
class Quality:
    rows: int
    duplicate_ids: int
    missing_features: tuple[str, ...]
    unexpected_features: tuple[str, ...]
    features: tuple[FeatureQuality, ...]


def quality(store: Store, baseline: Baseline, window: Window) -> Quality:
    """Data-quality checks of ``window`` against ``baseline``."""
    params = window.params()
    head = store.query(
        "SELECT count() AS n, count() - uniqExact(prediction_id) AS dup "
        f"FROM predictions WHERE {WHERE_WINDOW}",
        params,
    ).to_pylist()[0]
    rows = int(head["n"])
    numeric = [p for p in baseline.features if p.kind == "numeric"]
    stats = {
        str(r["feature"]): r
        for r in store.query(
            "SELECT k AS feature, countIf(isFinite(v)) AS n, "
            # transform() is a hash lookup per value; indexOf() scanned the names per value
            # (50x slower at 100 features).
            "countIf(isFinite(v) AND (v < transform(k, {names:Array(String)}, "
            "{lo:Array(Float64)}, nan) OR v > transform(k, {names:Array(String)}, "
            "{hi:Array(Float64)}, nan))) AS outside, "
            "uniqUpTo(1)(v) AS u FROM predictions ARRAY JOIN mapKeys(num) AS k, "
            f"mapValues(num) AS v WHERE {WHERE_WINDOW} GROUP BY k",
            {
                **params,
                "names": [p.name for p in numeric],
                "lo": [float(p.min if p.min is not None else "nan") for p in numeric],
                "hi": [float(p.max if p.max is not None else "nan") for p in numeric],
            },
        ).to_pylist()
    }
    categories = {
        str(r["feature"]): {str(x): int(c) for x, c in zip(r["xs"], r["cs"], strict=True)}
        for r in store.query(
            "SELECT feature, groupArray(x) AS xs, groupArray(c) AS cs FROM ("
            " SELECT k AS feature, v AS x, count() AS c FROM predictions "
            " ARRAY JOIN mapKeys(cat) AS k, mapValues(cat) AS v "
            f" WHERE {WHERE_WINDOW} GROUP BY k, v) GROUP BY feature",
            params,
        ).to_pylist()
    }
    features = []
    for p in baseline.features:
        if p.kind == "numeric":
            r = stats.get(p.name) or {"n": 0, "outside": 0, "u": 0}
            present, outside = int(r["n"]), int(r["outside"])
            unseen, constant = 0, present > 0 and int(r["u"]) <= 1
        else:
            counts = categories.get(p.name, {})
            present = sum(counts.values())
            outside = 0
            unseen = sum(c for x, c in counts.items() if x not in p.categories)
            constant = len(counts) == 1
        features.append(
            FeatureQuality(
                p.name,
                p.kind,
                present,
                1.0 - present / rows if rows else 0.0,
                outside / present if present else 0.0,
                unseen / present if present else 0.0,
                constant,
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
    )
