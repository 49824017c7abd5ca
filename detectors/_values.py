"""What a window's numeric maps hold, per key: values, finite ones, ones outside the baseline's
range, and whether they are all one value.

Data quality reads these counts with one aggregation over the window (``key_values``). A drift
run on the fine grid (``_grid``) reads every numeric value anyway and returns the same counts
from its pass, so ``detect()`` reads a large window's values once for both.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from keelwatch.store import Store

from ._baseline import FeatureProfile
from ._sql import WHERE_WINDOW

__all__ = ["KeyValues", "key_values", "usual_layout"]


class KeyValues(NamedTuple):
    """One key's values in the window: all, finite, finite outside the baseline's range,
    distinct up to 2 (0, 1, or 2 for "more than one"), and one of them."""

    entries: int
    n: int
    outside: int
    distinct: int
    one: float | None

    def merge(self, other: KeyValues) -> KeyValues:
        """Counts of two disjoint sets of rows; one value per side keeps ``distinct`` exact."""
        if not self.entries or not other.entries:
            return self if self.entries else other
        same = self.one == other.one or (self.one != self.one and other.one != other.one)
        distinct = 2 if self.distinct > 1 or other.distinct > 1 or not same else 1
        return KeyValues(
            self.entries + other.entries,
            self.n + other.n,
            self.outside + other.outside,
            distinct,
            self.one,
        )


# The window's rows whose ``num`` map has its usual layout (the same keys in the same order, as
# one model's calls send them) are aggregated position by position on the map's value array with
# -ForEach combinators: no ARRAY JOIN and no per-value name lookup. Rows with any other layout go
# through the general query, and the two are merged per feature (``KeyValues.merge``).
_LAYOUT = f"SELECT num.keys AS k FROM predictions WHERE {WHERE_WINDOW} LIMIT 1"


def usual_layout(store: Store, params: dict[str, Any]) -> list[str] | None:
    """The keys of the window's first ``num`` map, in order (``None`` for an empty window): the
    layout that by-position aggregations over the window assume."""
    first = store.query(_LAYOUT, params).column("k").to_pylist()
    return [str(k) for k in first[0]] if first else None


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


def key_values(
    store: Store, params: dict[str, Any], rows: int, numeric: list[FeatureProfile]
) -> dict[str, KeyValues]:
    """Per key of the window's ``num`` maps: counts of all, finite and out-of-range values.

    ``rows`` is the window's row count; ``numeric`` the baseline's numeric features, whose
    ``[min, max]`` define "out of range".
    """
    layout = usual_layout(store, params) if rows else None
    if layout is None:
        return {}
    row = store.query(
        _BY_POSITION, {**params, "layout": layout, **_ranges(layout, numeric)}
    ).to_pylist()[0]
    out: dict[str, KeyValues] = {}
    if row["rows"] and layout:
        for i, name in enumerate(layout):
            one = row["one"][i]
            out[name] = KeyValues(
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
            found = KeyValues(
                int(r["entries"]), int(r["n"]), int(r["outside"]), int(r["u"]), float(r["one"])
            )
            name = str(r["feature"])
            out[name] = out[name].merge(found) if name in out else found
    return out
