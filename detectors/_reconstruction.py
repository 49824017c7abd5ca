"""Multivariate drift: how badly does the baseline's principal subspace reconstruct the window?

NannyML's "data reconstruction drift", computed in ClickHouse. Each numeric feature is imputed
with the baseline mean where missing or non-finite and standardised with the baseline's mean and
population standard deviation (ddof=0, of the imputed column, as ``StandardScaler`` after
``SimpleImputer``). PCA on the standardised baseline keeps the fewest components whose explained
variance ratio sums to more than ``variance`` (scikit-learn's ``PCA(n_components=0.65)``). A
row's error is the Euclidean distance between its standardised vector and its reconstruction
from the kept components; the metric is the mean error over the window. A change in how features
move together (a correlation that breaks) raises it while every marginal stays the same.

What runs where: the baseline's per-chunk sums of the standardised vectors and of their outer
products are one SQL aggregation; numpy eigen-decomposes ``d x d`` matrices; the window's and
the chunks' per-row errors are computed in SQL from the discarded components (bound
``Array(Array(Float64))`` parameters) and leave the engine as a count, a sum and a few
moments. Since the eigenvectors form an orthonormal basis, the reconstruction residual of a
centred vector ``y`` is its projection on the discarded ones: ``|y - W'Wy|^2 = sum_j (u_j.y)^2``,
a sum of squares with no cancellation.

Thresholds (leave-one-chunk-out): the baseline is cut into ``chunks`` contiguous chunks; each
chunk's mean error is computed with a scaler and PCA fitted on the *rest* of the baseline (from
the chunk sums, no second fit over rows), so each chunk is scored like a production window, on
data the model did not see. The band is the mean of those chunk metrics ± 3 sample standard
deviations, the spread scaled from the chunk size to the window's size by ``sqrt(chunk/window)``.
NannyML scores chunks that are inside the data PCA was fitted on, which lowers their errors and
tightens the band below the noise of an unseen window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from keelwatch.store import Store

from ._baseline import Baseline
from ._sql import WHERE_WINDOW, Window, window_count

__all__ = ["ReconstructionDrift", "reconstruction_drift"]

#: Standard deviations of the chunk metric on each side of its mean (NannyML's band).
WIDTH = 3.0


@dataclass(frozen=True)
class ReconstructionDrift:
    """The window's mean reconstruction error against the band the baseline's chunks allow."""

    features: tuple[str, ...]
    components: int
    variance_explained: float
    mean_error: float
    lower: float
    upper: float
    drifted: bool
    n_rows: int
    #: Held-out mean error of each baseline chunk, and the chunk size, behind the band.
    chunk_errors: tuple[float, ...]
    chunk_rows: int


def _position(key: str) -> str:
    """SQL of the 1-based position in ``{names}`` of the feature named by ``key`` (0: none)."""
    return f"transform({key}, {{names:Array(String)}}, range(1, @D + 1), 0)"


# The standardised, mean-imputed vector ``z`` of a row given as positions ``p`` and values ``v``:
# a missing or non-finite value is imputed with the baseline mean, i.e. its z is 0. When every
# feature is there once (the common case), the values sorted by position are the vector; other
# rows look each position up. Lambdas capture only small per-row arrays: one that captures a
# map column copies the map once per element, which costs more than all the rest.
_Z = (
    "arrayMap((x, m, s) -> if(isFinite(x), (x - m) / s, 0.), "
    "if(arraySlice(arraySort(p), -@D) = range(1, @D + 1), "
    "arraySlice(arraySort((x, k) -> k, v, p), -@D), "
    "arrayMap(q -> if(q > 0, v[q], nan), arrayMap(i -> indexOf(p, i), range(1, @D + 1)))), "
    "{means:Array(Float64)}, {scales:Array(Float64)}) AS z"
)
# The baseline's rows rebuilt from baseline_values (numeric values are stored one per row and
# feature), with their chunk ``j``; a row with none of the features is absent here and is
# counted from the row range instead.
_REFERENCE = (
    "SELECT least(intDiv(row, {size:UInt64}), {last:UInt64}) AS j, " + _Z + " FROM ("
    f"SELECT row, groupArray({_position('feature')}) AS p, groupArray(value) AS v "
    "FROM baseline_values WHERE baseline_id = {b:String} AND feature IN {names:Array(String)} "
    "AND row >= {lo:UInt64} AND row < {hi:UInt64} GROUP BY row)"
).replace("@D", "length({names:Array(String)})")
_WINDOW = (
    f"SELECT {_Z} FROM (SELECT arrayMap(k -> {_position('k')}, num.keys) AS p, "
    f"num.values AS v FROM predictions WHERE {WHERE_WINDOW})"
).replace("@D", "length({names:Array(String)})")


def _chunk_sums(d: int) -> str:
    """Per chunk: rows present, mean and population covariance of z (``d`` is not user input)."""
    columns = ", ".join(f"z[{i}]" for i in range(1, d + 1))
    return (
        "SELECT j, count() AS n, avgForEach(z) AS mean, "
        f"covarPopMatrix({columns}) AS cov FROM ({_REFERENCE}) GROUP BY j"
    )


def _residual(basis: str, offset: str, rows: int) -> str:
    """SQL of ``|A z - c|`` for a bound ``rows x d`` matrix ``A`` and vector ``c``.

    One ``arrayDotProduct`` per row of ``A`` with a constant index: the same product inside a
    lambda over the rows costs twice as much (``z`` is copied per row).
    """
    if rows == 0:
        return "0."
    terms = (
        f"pow(arrayDotProduct({basis}[{t}], z) - {offset}[{t}], 2)" for t in range(1, rows + 1)
    )
    return "sqrt(" + " + ".join(terms) + ")"


def _chunk_errors(rows: int) -> str:
    """The count and sum of errors of the baseline rows in ``[lo, hi)`` under one bound fit."""
    error = _residual("{basis:Array(Array(Float64))}", "{offset:Array(Float64)}", rows)
    return f"SELECT count() AS n, sum({error}) AS e FROM ({_REFERENCE})"


def _window_errors(rows: int) -> str:
    error = _residual("{basis:Array(Array(Float64))}", "{offset:Array(Float64)}", rows)
    return f"SELECT count() AS n, sum({error}) AS e FROM ({_WINDOW})"


@dataclass(frozen=True)
class _Fit:
    """A PCA fitted on standardised data, as the affine map from baseline z to residuals."""

    components: int
    variance_explained: float
    basis: np.ndarray  # (d - components) x d: discarded directions, rescaled to this fit's z
    offset: np.ndarray  # basis @ mean, so the residual is basis @ z - offset


def _fit(n: float, s1: np.ndarray, s2: np.ndarray, variance: float) -> _Fit:
    """Scale and PCA fitted to ``n`` rows with sums ``s1`` (z) and ``s2`` (z z') in baseline z.

    On the whole baseline the scale is 1 (z is already standardised); on the rest of a chunk it
    is that rest's own standard deviation, so the fit is exactly the one the rest alone gives.
    """
    mean = s1 / n
    cov = s2 / n - np.outer(mean, mean)
    std = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    # A feature constant on these rows: scale 1, as scikit-learn's StandardScaler.
    std[std < 1e-8] = 1.0
    corr = cov / np.outer(std, std)
    values, vectors = np.linalg.eigh(corr)
    order = np.argsort(values)[::-1]
    values, vectors = np.clip(values[order], 0.0, None), vectors[:, order]
    ratio = np.cumsum(values) / values.sum()
    # scikit-learn: the fewest components whose cumulative ratio is strictly above the target.
    k = min(int(np.searchsorted(ratio, variance, side="right")) + 1, len(values))
    basis = vectors[:, k:].T / std
    return _Fit(k, float(ratio[k - 1]), basis, basis @ mean)


def _bound(fit: _Fit) -> dict[str, Any]:
    """The fit as the ``{basis}`` and ``{offset}`` parameters."""
    return {
        "basis": [[float(v) for v in row] for row in fit.basis],
        "offset": [float(v) for v in fit.offset],
    }


def _check(variance: float, chunks: int, total: int) -> None:
    if isinstance(variance, bool) or not isinstance(variance, (int, float)):
        raise ValueError(f"variance must be a number in (0, 1), got {variance!r}")
    if not 0.0 < variance < 1.0:  # also rejects NaN
        raise ValueError(f"variance must be in (0, 1), got {variance!r}")
    if isinstance(chunks, bool) or not isinstance(chunks, int) or chunks < 2:
        raise ValueError(f"chunks must be an integer of at least 2, got {chunks!r}")
    if total < 2 * chunks:
        raise ValueError(
            f"chunks={chunks} needs a baseline of at least {2 * chunks} rows, it has {total}"
        )


def _chunk_moments(
    store: Store, params: dict[str, Any], bounds: list[tuple[int, int]], d: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per chunk: rows with any feature, and the sums of z and of z z' (all-missing rows add 0)."""
    k = len(bounds)
    present, s1, s2 = np.zeros(k), np.zeros((k, d)), np.zeros((k, d, d))
    found = store.query(_chunk_sums(d), {**params, "lo": 0, "hi": bounds[-1][1]}).to_pylist()
    for r in found:
        j, n = int(r["j"]), int(r["n"])
        mean = np.array(r["mean"], dtype=float)
        present[j] = n
        s1[j] = n * mean
        s2[j] = n * (np.array(r["cov"], dtype=float) + np.outer(mean, mean))
    return present, s1, s2


def reconstruction_drift(
    store: Store,
    baseline: Baseline,
    window: Window,
    variance: float = 0.65,
    chunks: int = 10,
) -> ReconstructionDrift | None:
    """The window's mean PCA reconstruction error against leave-one-chunk-out thresholds.

    Args:
        variance: keep the fewest components explaining more than this share, in (0, 1).
        chunks: contiguous baseline chunks behind the thresholds, at least 2 (the baseline
            needs two rows per chunk).

    Returns ``None`` when it does not apply: fewer than two numeric baseline features with a
    spread, or no predictions in the window.
    """
    total = baseline.row_count
    _check(variance, chunks, total)
    usable = [
        p for p in baseline.features if p.kind == "numeric" and p.count > 0 and (p.std or 0.0) > 0
    ]
    n = window_count(store, window)
    if len(usable) < 2 or n == 0:
        return None
    names = [p.name for p in usable]
    size = total // chunks
    bounds = [(j * size, total if j == chunks - 1 else (j + 1) * size) for j in range(chunks)]
    params: dict[str, Any] = {
        "b": baseline.baseline_id,
        "names": names,
        # Mean imputation keeps the mean and shrinks the population std by sqrt(observed share).
        "means": [float(p.mean or 0.0) for p in usable],
        "scales": [float(p.std or 0.0) * math.sqrt(p.count / total) for p in usable],
        "size": size,
        "last": chunks - 1,
    }
    rows = np.array([hi - lo for lo, hi in bounds], dtype=float)
    present, s1, s2 = _chunk_moments(store, params, bounds, len(names))
    whole = _fit(float(total), s1.sum(axis=0), s2.sum(axis=0), variance)
    sums = np.zeros(chunks)
    for j, (lo, hi) in enumerate(bounds):
        rest = _fit(total - rows[j], s1.sum(axis=0) - s1[j], s2.sum(axis=0) - s2[j], variance)
        # One query per chunk, reading only its rows: choosing each row's fit among all the
        # chunks' in one query (multiIf, or indexing a bound array by j) costs several times more.
        found = store.query(
            _chunk_errors(len(rest.basis)), {**params, **_bound(rest), "lo": lo, "hi": hi}
        ).to_pylist()
        # Rows with no feature at all are absent from the query: z = 0, residual |offset|.
        sums[j] = float(found[0]["e"] or 0.0) + (rows[j] - present[j]) * float(
            np.linalg.norm(rest.offset)
        )
    chunk_errors = sums / rows
    found = store.query(
        _window_errors(len(whole.basis)), {**params, **window.params(), **_bound(whole)}
    ).to_pylist()[0]
    n = int(found["n"])
    mean_error = float(found["e"]) / n
    center = float(chunk_errors.mean())
    # The spread of a mean over m rows shrinks like 1/sqrt(m): rescale from chunks to the window.
    spread = float(chunk_errors.std(ddof=1)) * math.sqrt(total / chunks / n)
    lower, upper = center - WIDTH * spread, center + WIDTH * spread
    return ReconstructionDrift(
        features=tuple(names),
        components=whole.components,
        variance_explained=whole.variance_explained,
        mean_error=mean_error,
        lower=lower,
        upper=upper,
        drifted=not lower <= mean_error <= upper,
        n_rows=n,
        chunk_errors=tuple(float(e) for e in chunk_errors),
        chunk_rows=size,
    )
