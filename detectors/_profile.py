"""A baseline's stored profile, computed in SQL from the rows registration copied into the store.

Per numeric feature: count, nulls, min/max, mean, population standard deviation (ddof=0),
quantiles (``quantilesExact``'s element, read from the pre-sorted values), a distinct count
capped at 21, and Sturges bin edges with their counts; per categorical feature the category
counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from keelwatch.store import Store

from ._binning import sturges_edges

__all__ = ["QUANTILES", "FeatureProfile", "categorical_profile", "numeric_profiles"]

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


@dataclass(frozen=True)
class FeatureProfile:
    """What the baseline says about one feature."""

    name: str
    kind: str  # "numeric" or "categorical"
    count: int
    nulls: int
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    std: float | None = None
    quantiles: tuple[float, ...] = ()
    edges: tuple[float, ...] = ()
    counts: tuple[int, ...] = ()
    categories: dict[str, int] = field(default_factory=dict)
    #: Distinct values (numeric), exact up to 20 and 21 above; 0 when not profiled.
    distinct: int = 0


def numeric_profiles(
    store: Store, baseline_id: str, names: list[str], total: int
) -> dict[str, FeatureProfile]:
    if not names:
        return {}
    params = {"b": baseline_id, "names": list(names)}
    source = (
        "SELECT feature, value AS x FROM baseline_values WHERE baseline_id = {b:String} "
        "AND feature IN {names:Array(String)}"
    )
    stats = {
        str(r["feature"]): r
        for r in store.query(
            "SELECT feature, count() AS n, min(x) AS lo, max(x) AS hi, avg(x) AS mean, "
            f"stddevPop(x) AS std, uniqUpTo(20)(x) AS u FROM ({source}) GROUP BY feature",
            params,
        ).to_pylist()
    }
    # quantilesExact's element (0-based index ⌊level·n⌋) read from the sorted values, no re-sort.
    quantiles = {
        str(r["feature"]): r["q"]
        for r in store.query(
            "SELECT feature, arrayMap(l -> sorted_values[toUInt64(l * length(sorted_values)) + 1], "
            "{levels:Array(Float64)}) AS q FROM baseline_sorted WHERE baseline_id = {b:String} "
            "AND feature IN {names:Array(String)} AND notEmpty(sorted_values) LIMIT 1 BY feature",
            {**params, "levels": list(QUANTILES)},
        ).to_pylist()
    }
    edges = {
        name: sturges_edges(float(r["lo"]), float(r["hi"]), int(r["n"]))
        for name, r in stats.items()
    }
    counts = {}
    for name, feature_edges in edges.items():
        # One query per feature: a constant edge array is far cheaper than a per-row lookup.
        hist = [0] * (len(feature_edges) - 1)
        for row in store.query(
            "SELECT arrayCount(t -> t <= value, {inner:Array(Float64)}) AS b, count() AS c "
            "FROM baseline_values WHERE baseline_id = {b:String} AND feature = {f:String} "
            "GROUP BY b",
            {"b": baseline_id, "f": name, "inner": [float(e) for e in feature_edges[1:-1]]},
        ).to_pylist():
            hist[int(row["b"])] = int(row["c"])
        counts[name] = hist
    out = {}
    for name in names:
        r = stats.get(name)
        if r is None:
            out[name] = FeatureProfile(name, "numeric", 0, total)
            continue
        out[name] = FeatureProfile(
            name,
            "numeric",
            int(r["n"]),
            total - int(r["n"]),
            float(r["lo"]),
            float(r["hi"]),
            float(r["mean"]),
            float(r["std"]),
            tuple(float(q) for q in quantiles[name]),
            tuple(float(e) for e in edges[name]),
            tuple(counts[name]),
            distinct=int(r["u"]),
        )
    return out


def categorical_profile(store: Store, baseline_id: str, name: str, total: int) -> FeatureProfile:
    rows = store.query(
        "SELECT cat[{f:String}] AS v, count() AS c FROM baseline_rows "
        "WHERE baseline_id = {b:String} AND mapContains(cat, {f:String}) GROUP BY v ORDER BY v",
        {"b": baseline_id, "f": name},
    ).to_pylist()
    categories = {str(r["v"]): int(r["c"]) for r in rows}
    n = sum(categories.values())
    return FeatureProfile(name, "categorical", n, total - n, categories=categories)
