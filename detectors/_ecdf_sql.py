"""Exact ECDF distances between a baseline and a window, in one SQL pass per feature group.

First Wasserstein distance, from the two sorted samples (``wasserstein_query``): with
``F⁻¹``, ``G⁻¹`` the empirical quantile functions, ``W1 = ∫₀¹ |F⁻¹(u) − G⁻¹(u)| du``, equal to
``scipy.stats.wasserstein_distance``'s ``∫ |F − G| dx`` (ties included). With equal sizes this
is ``Σ |r_i − c_i| / n``. Otherwise let ``A`` be the larger sorted sample (``a`` values) and
``B`` the smaller (``b``); in units of ``1/(a·b)`` A's quantile steps are ``((i − 1)·b, i·b]``
and B's ``((j − 1)·a, j·a]``, longer, so each step of A meets at most two steps of B: ``j(i) =
⌊(i − 1)·b / a⌋ + 1`` and, when B's boundary ``j·a`` falls inside, ``j + 1``. Hence

    W1 = Σ_i |A_i − B_j(i)|·(min(j·a, i·b) − (i − 1)·b) + |A_i − B_j(i)+1|·(i·b − min(j·a, i·b))

over ``a·b``, computed on arrays of length ``a`` (``B`` expanded: its element ``j`` repeated for
the ``⌈j·a/b⌉ − ⌈(j − 1)·a/b⌉`` steps of A that start in its step). When ``a ≥ 2·b`` the same sum
is ``b·L1Distance(A, B expanded)`` plus a correction for the steps of A that straddle one of
B's boundaries ``j·a`` with ``j·a mod b ≠ 0`` (at most ``b`` of them, the last of each run):
``(b − j·a mod b)·(|A_i − B_j+1| − |A_i − B_j|)``: the usual window, much smaller than its
baseline. No sort of the union of both samples is needed.

Kolmogorov-Smirnov needs the two CDFs at every value, so ``ks_query`` merges both sides: it sorts
the union with a 0/1 side flag (``arraySort`` keyed on the values), takes cumulative counts
``R_i`` (reference values at or before position ``i``) and ``C_i`` (current), and
``D = max |R_i / n_ref − C_i / n_cur|`` over the last position of each run of equal values
(``dx_i = x_{i+1} − x_i != 0``; at the very last position both ECDFs are 1), as
``scipy.stats.ks_2samp``; the counts at the first maximum are returned for the p-value. It also
returns ``W1 = Σ_i |R_i / n_ref − C_i / n_cur| · dx_i``. On a presorted reference
(``baseline_sorted``) the union is the concatenation of the stored sorted values and the
window's, sorted once more as two runs already in order (``_presorted_ks``): at 1M + 1M values
x 20 features 5.5-5.8 s against 7.1-7.2 s from unsorted values. It still costs about four times
the Wasserstein query, so it runs only for features that use KS.
"""

from __future__ import annotations

from ._sql import (
    CURRENT_NUM,
    CURRENT_ONE,
    FEW_VALUES_CAP,
    REFERENCE_NUM,
    REFERENCE_ONE,
)

__all__ = ["COUNTING", "QUERIES", "ks_query", "wasserstein_query"]


def _sides(reference: str, current: str, by_feature: bool) -> str:
    key = "feature, " if by_feature else ""
    group = " GROUP BY feature" if by_feature else ""
    return (
        f"SELECT {key}arraySort(groupArrayIf(x, s = 1)) AS rs, "
        "arraySort(groupArrayIf(x, s = 0)) AS cs, length(rs) AS nr, length(cs) AS nc FROM ("
        f"SELECT {key}x, toUInt8(1) AS s FROM ({reference}) "
        f"UNION ALL SELECT {key}x, toUInt8(0) AS s FROM ({current})){group}"
    )


_SORTED_REFERENCE = (
    "SELECT feature, sorted_values FROM baseline_sorted WHERE baseline_id = {b:String} "
    "AND feature IN {names:Array(String)} LIMIT 1 BY feature"
)
_SORTED_REFERENCE_ONE = (
    "SELECT sorted_values FROM baseline_sorted WHERE baseline_id = {b:String} "
    "AND feature = {f:String} LIMIT 1"
)


def _joined(window: str, reference: str, small_window: bool, by_feature: bool) -> str:
    """``FROM`` the window's subquery (``c``) joined to the reference's (``r``).

    The join holds its right side: a window at most half the reference's size (at 50,000 rows
    against 1M values x 20 features 0.5-0.6 s and 530 MB peak RSS, against 1.2 s and 960 MB
    with the reference held), else the reference (faster with equal sizes)."""
    sides = [f"({window}) AS c", f"({reference}) AS r"]
    if small_window:
        sides.reverse()
    if by_feature:
        return f"FROM {sides[0]} INNER JOIN {sides[1]} USING feature"
    return f"FROM {sides[0]} CROSS JOIN {sides[1]}"


#: The columns every presorted sides query returns: the reference's sorted values as stored,
#: the window's sorted here, and both sizes.
_SORTED_SIDES = "r.sorted_values AS rs, arraySort(c.v) AS cs, length(rs) AS nr, length(cs) AS nc"


def _presorted_sides(current: str, by_feature: bool, small_window: bool = False) -> str:
    """Both sides with the reference's sorted values read from ``baseline_sorted``."""
    if by_feature:
        window = f"SELECT feature, groupArray(x) AS v FROM ({current}) GROUP BY feature"
        joined = _joined(window, _SORTED_REFERENCE, small_window, True)
        return f"SELECT feature, {_SORTED_SIDES} {joined}"
    window = f"SELECT groupArray(x) AS v FROM ({current})"
    return f"SELECT {_SORTED_SIDES} {_joined(window, _SORTED_REFERENCE_ONE, small_window, False)}"


#: Space-Saving counters per counted feature: more than the cap, so the counts are exact whenever
#: the distinct values are at most the cap (the only case in which they are used).
_COUNTERS = 4 * (FEW_VALUES_CAP + 1)


def _counting_sides(current: str, small_window: bool = False) -> str:
    """``_presorted_sides`` by feature, also counting the window's values of ``{counted}``
    (``nd``: distinct up to the cap, one more meaning more; ``top``: (value, count) pairs). The
    ``{only}`` features are counted and hold no values (their ``nc`` is 0)."""
    # IN, not has(): on the LowCardinality key it is decided once per dictionary entry.
    counted = "feature IN {counted:Array(String)}"
    window = (
        "SELECT feature, groupArrayIf(x, feature NOT IN {only:Array(String)}) AS v, "
        f"uniqUpToIf({FEW_VALUES_CAP})(x, {counted}) AS nd, "
        f"approx_top_countIf({FEW_VALUES_CAP + 1}, {_COUNTERS})(x, {counted}) AS top "
        f"FROM ({current}) GROUP BY feature"
    )
    joined = _joined(window, _SORTED_REFERENCE, small_window, True)
    return f"SELECT feature, {_SORTED_SIDES}, c.nd AS nd, c.top AS top {joined}"


def _wasserstein(sides: str, by_feature: bool, carry: str = "") -> str:
    """W1 over a ``sides`` query; ``carry``: more of its columns passed through (``"a, b, "``)."""
    key = ("feature, " if by_feature else "") + carry
    # Three branches, chosen per row (feature): equal sizes (or an empty side, left out later),
    # a larger side at least twice the smaller (``long``: B's runs in the expansion are long, so
    # few A-intervals straddle a boundary), and the rest. Each branch gets empty arrays on the
    # rows it does not serve, so none costs much where it is not used, short-circuit or not.
    # Lambdas capture no per-row column over the larger side (a captured column is copied per
    # element): na and nb appear only in lambdas over the smaller side's length.
    return f"""
SELECT {key}nr, nc, multiIf(simple, L1Distance(rs, if(nr = nc, cs, rs)) / nr,
 long, (nb * L1Distance(la, arrayFlatten(arrayMap((v, k) -> arrayWithConstant(k, v), lb, lk)))
  + arraySum((x, l, r, w) -> w * (abs(x - r) - abs(x - l)),
   arrayFilter((x, m) -> m, la,
    arrayFlatten(arrayMap((k, f) -> arrayPushBack(arrayWithConstant(k - 1, false), f), lk, ls))),
   arrayFilter((v, f) -> f, lb, ls),
   arrayFilter((v, f) -> f, arrayPushBack(arrayPopFront(lb), 0.), ls),
   arrayFilter((w, f) -> f, lw, ls))) / (na * nb),
 arraySum((x, l, r, j, i) -> abs(x - l) * (least(j * na, i * nb) - (i - 1) * nb)
   + abs(x - r) * (i * nb - least(j * na, i * nb)),
  ga, arrayFlatten(arrayMap((v, k) -> arrayWithConstant(k, v), gb, gk)),
  arrayFlatten(arrayMap((v, k) -> arrayWithConstant(k, v), arrayPushBack(arrayPopFront(gb), 0.),
   gk)),
  arrayFlatten(arrayMap((j, k) -> arrayWithConstant(k, j), range(1, length(gb) + 1), gk)),
  range(1, length(ga) + 1)) / (na * nb)) AS w, nan AS d, 0 AS ref_below, 0 AS cur_below FROM (
 SELECT {key}rs, cs, nr, nc, simple, long, na, nb,
  if(long, xa, []) AS la, if(long, xb, []) AS lb, if(long, kb, []) AS lk,
  arrayMap(j -> nb - (j * na) % nb, range(1, length(lb) + 1)) AS lw,
  arrayMap(w -> w != nb, lw) AS ls,
  if(long, [], xa) AS ga, if(long, [], xb) AS gb, if(long, [], kb) AS gk FROM (
  SELECT {key}rs, cs, nr, nc, nr = nc OR nr = 0 OR nc = 0 AS simple,
   toInt64(greatest(nr, nc)) AS na, toInt64(least(nr, nc)) AS nb,
   NOT simple AND na >= 2 * nb AS long,
   if(simple, [], if(nr >= nc, rs, cs)) AS xa, if(simple, [], if(nr >= nc, cs, rs)) AS xb,
   arrayMap(j -> intDiv(j * na + nb - 1, nb) - intDiv((j - 1) * na + nb - 1, nb),
    range(1, length(xb) + 1)) AS kb
  FROM ({sides})
 )
)
"""


def wasserstein_query(reference: str, current: str, by_feature: bool = False) -> str:
    """The W1 query over two ``x`` sources (constant SQL fragments, never user input);
    ``by_feature``: the sources have a ``feature`` column too and each feature is one row."""
    return _wasserstein(_sides(reference, current, by_feature), by_feature)


def _ks(merged: str, by_feature: bool) -> str:
    """KS ``D`` with its counts, and W1, over a ``merged`` query: per row (feature) both sides'
    values sorted together (``xs``), their sides in that order (``ss``: 1 for the reference)
    and both sizes (``nr``, ``nc``)."""
    key = "feature, " if by_feature else ""
    return f"""
SELECT {key}nr, nc, w, d, cr[i] AS ref_below, i - cr[i] AS cur_below FROM (
 SELECT {key}nr, nc,
  arrayPushBack(arrayPopFront(arrayDifference(xs)), 0.) AS dx,
  arrayCumSum(ss) AS cr,
  arrayMap((r, j) -> abs(r / nr - (j - r) / nc), cr, arrayEnumerate(cr)) AS gap,
  arraySum((g, t) -> g * t, gap, dx) AS w,
  arrayMax((g, t) -> if(t != 0, g, 0.), gap, dx) AS d,
  arrayFirstIndex((g, t) -> t != 0 AND g = d, gap, dx) AS i FROM ({merged})
)
"""


def ks_query(reference: str, current: str, by_feature: bool = False) -> str:
    """The merged-ECDF query (KS ``D`` with its counts, and W1) over two ``x`` sources."""
    key = "feature, " if by_feature else ""
    group = " GROUP BY feature" if by_feature else ""
    merged = f"""
  SELECT {key}arraySort(groupArray(x)) AS xs,
   arraySort((s, v) -> v, groupArray(s), groupArray(x)) AS ss,
   toUInt64(sum(s)) AS nr, count() - nr AS nc
  FROM (
   SELECT {key}x, toUInt8(1) AS s FROM ({reference})
   UNION ALL SELECT {key}x, toUInt8(0) AS s FROM ({current})
  ){group}"""
    return _ks(merged, by_feature)


def _presorted_ks(sides: str, by_feature: bool) -> str:
    """:func:`ks_query` over a presorted ``sides`` query: the two sorted sides are merged by
    sorting their concatenation (two runs already in order), not every value from scratch."""
    key = "feature, " if by_feature else ""
    merged = f"""
  SELECT {key}nr, nc, arrayConcat(rs, cs) AS both, arraySort(both) AS xs,
   arraySort((s, v) -> v,
    arrayConcat(arrayWithConstant(nr, toUInt8(1)), arrayWithConstant(nc, toUInt8(0))), both) AS ss
  FROM ({sides})"""
    return _ks(merged, by_feature)


#: Compiling these expressions (done once they ran 3 times) cost 0.2-0.4 s and gained nothing.
_INTERPRETED = "\nSETTINGS compile_expressions = 0"
#: Per (kind, grouped, small window): "presorted" and "ks_presorted" read the reference from
#: baseline_sorted (holding the window in the join when it is small, see _joined), "w1" and "ks"
#: from baseline_values (baselines registered before migration 7; the small flag is ignored).
_SOURCES = {True: (REFERENCE_NUM, CURRENT_NUM), False: (REFERENCE_ONE, CURRENT_ONE)}


def _query(kind: str, grouped: bool, small: bool) -> str:
    reference, current = _SOURCES[grouped]
    if kind == "presorted":
        return _wasserstein(_presorted_sides(current, grouped, small), grouped)
    if kind == "ks_presorted":
        return _presorted_ks(_presorted_sides(current, grouped, small), grouped)
    return (ks_query if kind == "ks" else wasserstein_query)(reference, current, grouped)


QUERIES = {
    (kind, grouped, small): _query(kind, grouped, small) + _INTERPRETED
    for kind in ("presorted", "ks_presorted", "w1", "ks")
    for grouped in (False, True)
    for small in (False, True)
}
COUNTING = {
    small: _wasserstein(_counting_sides(CURRENT_NUM, small), True, "nd, top, ") + _INTERPRETED
    for small in (False, True)
}
