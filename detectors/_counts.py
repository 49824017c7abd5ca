"""Reference and current counts over shared bins, for every numeric feature at once.

Each convention (see ``_binning``) needs a few one-pass queries over all features of a run, never
one per feature; the results are aligned count vectors ready for ``_methods``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from keelwatch.store import Store

from ._baseline import Baseline
from ._binning import doane_edges, sturges_edges
from ._histograms import histograms
from ._sql import (
    CURRENT_NUM,
    CURRENT_ONE,
    REFERENCE_NUM,
    REFERENCE_ONE,
    NumericSummary,
    Window,
    capped_value_counts,
    current_source,
    distinct_counts,
    names_param,
    numeric_summaries,
    source_params,
    value_counts,
)

__all__ = ["COMPATS", "Known", "Pairs", "few_value_counts", "numeric_pairs"]

COMPATS = ("keelwatch", "evidently", "nannyml")
#: Per feature: (reference counts, current counts), aligned.
Pairs = dict[str, tuple[np.ndarray, np.ndarray]]


def _keelwatch(store: Store, window: Window, baseline: Baseline, names: Sequence[str]) -> Pairs:
    params = source_params(window, baseline.baseline_id, names)
    edges = {n: np.asarray(baseline.feature(n).edges) for n in names}
    out: Pairs = {}
    for name, (counts, below, above) in histograms(store, CURRENT_ONE, params, edges).items():
        counts = counts.copy()
        counts[0] += below
        counts[-1] += above
        out[name] = (np.asarray(baseline.feature(name).counts, dtype=float), counts.astype(float))
    return out


#: Per few-valued feature: the reference's value counts, and the window's (``None`` when the
#: window holds more than ``FEW_VALUES_CAP`` distinct values).
Known = Mapping[str, tuple[dict[float, int], dict[float, int] | None]]


def few_value_counts(
    store: Store,
    window: Window,
    baseline_id: str,
    names: Sequence[str],
    window_counts: Mapping[str, Mapping[float, int] | None] | None = None,
) -> Known:
    """Both sides' value counts of few-valued numeric features, in one read of the window.

    Evidently's test choice needs the distinct values of reference and window together, and
    its per-value binning the counts of each: one query answers both. ``window_counts``: the
    window's side already counted (by the exact ECDF pass), so only the baseline's is read.
    """
    if not names:
        return {}
    params = source_params(window, baseline_id, names)
    ref = value_counts(store, REFERENCE_NUM, params)
    if window_counts is None:
        source, extra = current_source(names)
        cur = capped_value_counts(store, source, {**params, **extra})
    else:
        cur = {n: None if c is None else dict(c) for n, c in window_counts.items()}
    return {n: (ref.get(n, {}), cur.get(n, {})) for n in names}


def _per_value(
    store: Store, params: dict[str, object], names: Sequence[str], known: Known | None = None
) -> Pairs:
    if not names:
        return {}
    known = known or {}
    ref: dict[str, dict[float, int]] = {}
    cur: dict[str, dict[float, int]] = {}
    for name in names:
        counts = known.get(name)
        if counts is not None and counts[1] is not None:
            ref[name], cur[name] = counts[0], counts[1]
    rest = [n for n in names if n not in cur]
    if rest:
        source, extra = current_source(rest)
        ref.update(value_counts(store, REFERENCE_NUM, {**params, "names": names_param(rest)}))
        cur.update(value_counts(store, source, {**params, **extra}))
    out: Pairs = {}
    for name in names:
        r, c = ref.get(name, {}), cur.get(name, {})
        if not c:  # no finite value in the window: nothing to compare
            continue
        keys = sorted(set(r) | set(c))
        out[name] = (
            np.array([r.get(k, 0) for k in keys], dtype=float),
            np.array([c.get(k, 0) for k in keys], dtype=float),
        )
    return out


def _both_sides(
    store: Store, params: dict[str, object], edges: dict[str, np.ndarray]
) -> dict[str, tuple[tuple[np.ndarray, int, int], tuple[np.ndarray, int, int]]]:
    if not edges:
        return {}
    sub = {**params, "names": names_param(list(edges))}
    ref = histograms(store, REFERENCE_ONE, sub, edges)
    cur = histograms(store, CURRENT_ONE, sub, edges)
    return {name: (ref[name], cur[name]) for name in edges}


def _summaries(store: Store, params: dict[str, object], source: str) -> dict[str, NumericSummary]:
    return numeric_summaries(store, source, params)


def _evidently(
    store: Store,
    window: Window,
    baseline: Baseline,
    names: Sequence[str],
    hellinger: bool,
    known: Known | None = None,
) -> Pairs:
    params = source_params(window, baseline.baseline_id, names)
    if hellinger:
        cur = _summaries(store, params, CURRENT_NUM)
        names = [n for n in names if n in cur]
        # Sturges over the distinct values of both sides, whatever their number.
        distinct = distinct_counts(store, (REFERENCE_NUM, CURRENT_NUM), params)
        edges = {}
        for n in names:
            p = baseline.feature(n)
            lo, hi = min(p.min or 0.0, cur[n].min), max(p.max or 0.0, cur[n].max)
            edges[n] = sturges_edges(lo, hi, distinct[n])
        return {
            n: (r[0].astype(float), c[0].astype(float))
            for n, (r, c) in _both_sides(store, params, edges).items()
        }
    ref_distinct = {n: baseline.feature(n).distinct for n in names}
    if any(d == 0 for d in ref_distinct.values()):  # profile from before distinct counts
        ref = _summaries(store, params, REFERENCE_NUM)
        ref_distinct = {n: ref[n].distinct if n in ref else 0 for n in names}
    # Only the Sturges-binned features need the window's range; the others are counted per
    # value, which also tells whether the window has any value of them.
    many = [n for n in names if ref_distinct[n] > 20]
    cur = _summaries(store, {**params, "names": names_param(many)}, CURRENT_NUM) if many else {}
    edges = {}
    for n in many:
        if n not in cur:
            continue
        p = baseline.feature(n)
        lo, hi = min(p.min or 0.0, cur[n].min), max(p.max or 0.0, cur[n].max)
        edges[n] = sturges_edges(lo, hi, p.count + cur[n].count)
    out: Pairs = {
        n: (r[0].astype(float), c[0].astype(float))
        for n, (r, c) in _both_sides(store, params, edges).items()
    }
    out.update(_per_value(store, params, [n for n in names if n not in many], known))
    return out


def _nannyml(store: Store, window: Window, baseline: Baseline, names: Sequence[str]) -> Pairs:
    params = source_params(window, baseline.baseline_id, names)
    ref = _summaries(store, params, REFERENCE_NUM)
    edges = {
        n: doane_edges(s.min, s.max, s.count, s.std, s.skew) for n, s in ref.items() if s.count
    }
    out: Pairs = {}
    for n, (r, c) in _both_sides(store, params, edges).items():
        ref_counts = np.append(r[0], 0).astype(float)
        cur_counts = np.append(c[0], c[1] + c[2]).astype(float)
        if c[0].sum() + c[1] + c[2] > 0:
            out[n] = (ref_counts, cur_counts)
    return out


def numeric_pairs(
    store: Store,
    window: Window,
    baseline: Baseline,
    names: Sequence[str],
    compat: str,
    hellinger: bool = False,
    known: Known | None = None,
) -> Pairs:
    """Aligned (reference, current) counts per numeric feature under ``compat``'s binning.

    ``hellinger`` selects Evidently's separate Hellinger binning. ``known``: value counts of
    few-valued features already read (:func:`few_value_counts`), not read again.
    """
    if compat not in COMPATS:
        raise ValueError(f"compat must be one of {COMPATS}, got {compat!r}")
    if not names:
        return {}
    if compat == "evidently":
        return _evidently(store, window, baseline, names, hellinger, known)
    if compat == "nannyml":
        return _nannyml(store, window, baseline, names)
    return _keelwatch(store, window, baseline, names)
