"""Exact ECDF distances between a baseline and a window: which features go in which query.

The SQL and its formulas are in ``_ecdf_sql``.

Memory is bounded by a budget of values held at once (``DEFAULT_BUDGET``). The first grouped read
of the window also counts the values of the ``counted`` features (few-valued ones: Evidently
chooses their test from the distinct values of both sides). A counted feature whose distances are
not asked for holds no values there, only counters: ``uniqUpTo`` tells whether there are more than
``FEW_VALUES_CAP`` distinct values, and ``approx_top_count``'s Space-Saving counters, more of them
than the cap, hold every value's exact count when there are not. This spares a read of the window's
maps (0.2-0.25 s at 1M rows x 21 features).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from keelwatch.store import Store

from ._ecdf_sql import COUNTING, QUERIES
from ._sql import (
    FEW_VALUES_CAP,
    Window,
    capped_value_counts,
    current_source,
    names_param,
)

__all__ = ["DEFAULT_BUDGET", "EcdfDistances", "EcdfPass", "ecdf_pass", "held", "query_distances"]


@dataclass(frozen=True)
class EcdfDistances:
    """W1 and, when asked for, the KS statistic of one feature, with the counts behind them."""

    n_ref: int
    n_cur: int
    wasserstein: float
    ks_d: float | None = None
    ks_ref_below: int | None = None
    ks_cur_below: int | None = None


#: Values (both sides, all features of a query) held in the engine at once. Each query reads the
#: window's feature map once (~0.2-0.4 s at 1M rows x 20 features), so fewer queries are faster.
#: On 1M + 1M rows x 20 features: 10M / 20M / 40M took 1.5-2.2 / 1.7-1.9 / 1.3-1.5 s, +335 /
#: +345 / +545 MB peak RSS with equal sizes; with 1M + 0.6M (the expanding branch), 10M / 20M
#: took 3.3-4.4 / 3.3 s, +690 / +665 MB (shared 2-core machine, noisy).
DEFAULT_BUDGET = 20_000_000


def _distances(row: dict[str, Any]) -> EcdfDistances | None:
    if not row["nr"] or not row["nc"]:
        return None
    d = float(row["d"])
    if d != d:  # the Wasserstein query: no KS
        return EcdfDistances(int(row["nr"]), int(row["nc"]), float(row["w"]))
    return EcdfDistances(
        int(row["nr"]),
        int(row["nc"]),
        float(row["w"]),
        d,
        int(row["ref_below"]),
        int(row["cur_below"]),
    )


def query_distances(store: Store, sql: str, params: dict[str, Any]) -> EcdfDistances | None:
    """Run a ``wasserstein_query`` or ``ks_query``; ``None`` when either side is empty."""
    rows = store.query(sql, params).to_pylist()
    return _distances(rows[0]) if rows else None


def held(n_ref: int, n_cur: int) -> int:
    """Values one feature holds at once in the W1 query, for ``ecdf_pass``'s ``sizes``: both
    sides, and where one side is at least twice the other, the smaller side expanded to the
    larger one's length. (Counting that expansion for less unequal sizes too split 1M + 0.6M
    values x 20 features into three queries instead of two: 0.5 s slower, 100 MB less.)"""
    small, large = sorted((n_ref, n_cur))
    return n_ref + n_cur + (large if small and large >= 2 * small else 0)


def _groups(sizes: Sequence[tuple[str, int]], budget: int) -> list[list[str]]:
    groups: list[list[str]] = []
    held = budget
    for name, size in sizes:
        if not groups or held + size > budget:
            groups.append([])
            held = 0
        groups[-1].append(name)
        held += size
    return groups


def _kind(name: str, ks: Collection[str], presorted: Collection[str]) -> str:
    if name in ks:
        return "ks_presorted" if name in presorted else "ks"
    return "presorted" if name in presorted else "w1"


class EcdfPass(NamedTuple):
    """Distances per feature, and the window's value counts of the counted features (``None``
    for one with more than ``FEW_VALUES_CAP`` distinct values)."""

    distances: dict[str, EcdfDistances]
    window_counts: dict[str, dict[float, int] | None]


def _top(row: dict[str, Any]) -> dict[float, int] | None:
    if int(row["nd"]) > FEW_VALUES_CAP:
        return None
    return {float(t["item"]): int(t["count"]) for t in row["top"]}


def ecdf_pass(
    store: Store,
    window: Window,
    baseline_id: str,
    features: Sequence[str],
    sizes: dict[str, int] | None = None,
    budget: int = DEFAULT_BUDGET,
    ks: Collection[str] = (),
    counted: Sequence[str] = (),
    small_window: bool = False,
) -> EcdfPass:
    """W1 per numeric feature between the baseline and the window, KS ``D`` for ``ks``, and the
    window's value counts of the ``counted`` features.

    Features are queried together while their values (``sizes``: an upper bound of the values
    each holds, :func:`held`) fit ``budget``: each query reads the window's feature map once,
    so fewer, larger queries are faster, and the budget bounds the memory. A feature alone
    reads its one map key instead of unnesting the map. Features missing on either side are
    left out. The counted features are counted by the first grouped query on presorted
    references, where they hold no values unless their distances are asked for too; else by a
    read of their own. ``small_window``: the window has at most half as many values as each
    reference (the join then holds the window's values instead of the reference's).
    """
    out: dict[str, EcdfDistances] = {}
    counts: dict[str, dict[float, int] | None] = {}
    sizes = sizes or {}
    presorted = (
        {
            str(name)
            for name in store.query(
                "SELECT DISTINCT feature FROM baseline_sorted WHERE baseline_id = {b:String}",
                {"b": baseline_id},
            )
            .column("feature")
            .to_pylist()
        }
        if features or counted
        else set()
    )
    # Counted features on a presorted reference ride along with the first presorted group.
    riding = [n for n in counted if n in presorted]
    for kind in ("presorted", "ks_presorted", "w1", "ks"):
        names = [n for n in features if _kind(n, ks, presorted) == kind]
        groups = _groups([(n, sizes.get(n, budget)) for n in names], budget)
        if kind == "presorted" and riding:
            groups = groups or [[]]
            only = [n for n in riding if n not in groups[0]]
            params = {**window.params(), "b": baseline_id, "counted": riding, "only": only}
            for row in store.query(
                COUNTING[small_window], {**params, "names": groups[0] + only}
            ).to_pylist():
                name = str(row["feature"])
                if name in riding:
                    counts[name] = _top(row)
                found = _distances(row)
                if found is not None:
                    out[name] = found
            groups = groups[1:]
        for group in groups:
            if len(group) == 1:
                params = {**window.params(), "b": baseline_id, "f": group[0]}
                found = query_distances(store, QUERIES[kind, False, small_window], params)
                if found is not None:
                    out[group[0]] = found
                continue
            params = {**window.params(), "b": baseline_id, "names": list(group)}
            for row in store.query(QUERIES[kind, True, small_window], params).to_pylist():
                found = _distances(row)
                if found is not None:
                    out[str(row["feature"])] = found
    rest = [n for n in counted if n not in presorted]
    if rest:
        source, extra = current_source(rest)
        params = {**window.params(), "names": names_param(rest), **extra}
        counts.update(capped_value_counts(store, source, params))
    return EcdfPass(out, {n: counts.get(n, {}) for n in counted})
