"""Drift scores from small arrays (bin counts, category counts, ECDF extremes).

Every method here takes numbers that ClickHouse aggregated; no raw values reach Python. ``r`` and
``c`` are the reference and current proportions over the same bins (counts / their sum).

- PSI: ``Σ (r − c) · ln(r / c)``, natural log. Zero proportions are filled per side first
  (Evidently's rule): if the smallest non-zero proportion is at most 1e-4, zeros become that
  value / 1e6, else 1e-4.
- KL divergence: ``Σ r · ln(r / c)`` after the same zero fill, as ``scipy.stats.entropy(r, c)``.
- Jensen-Shannon distance: ``sqrt((KL(r‖m) + KL(c‖m)) / 2)``, ``m = (r + c) / 2``, no zero fill,
  natural log by default (at most sqrt(ln 2) ≈ 0.8326; base 2 gives at most 1), as
  ``scipy.spatial.distance.jensenshannon``.
- Hellinger distance: ``sqrt(1 − clip(Σ sqrt(r·c), 0, 1))`` (Evidently), which equals
  ``sqrt(Σ (sqrt r − sqrt c)²) / sqrt 2`` (NannyML) for proper distributions.
- Chi-square, two-sample (keelwatch, NannyML): the test of homogeneity of the ``2 x k`` table
  of reference and current counts, ``(2 − 1)(k − 1)`` degrees of freedom, no continuity
  correction, as ``scipy._stats().chi2_contingency(..., correction=False)``; categories empty on
  both sides are dropped.
- Chi-square, goodness of fit (Evidently): observed current counts against ``reference counts ·
  n_cur / n_ref``, ``k − 1`` degrees of freedom, as ``scipy.stats.chisquare``; a category unseen
  in the reference makes the statistic infinite (p = 0). It treats the reference proportions as
  exact, so with a reference not much larger than the window it alarms far more often than
  alpha (21% instead of 5% at 300 vs 200 rows, ``tests/detectors/test_alarm_rate.py``).
- Two-proportion Z-test: the first sorted category is coded 0, everything else 1; pooled
  proportion ``P``, ``z = (p_ref − p_cur) / sqrt(P (1 − P) (1/n_ref + 1/n_cur))``, two-sided
  ``p = 2 (1 − Φ(|z|))``.
- Kolmogorov-Smirnov: ``D = max |F_ref − F_cur|`` comes from SQL (``_ecdf``); the p-value is the
  two-sided one of ``scipy.stats.ks_2samp``: exact below 10,001 rows per side (``auto``), else
  Smirnov's asymptotic ``kstwo.sf(D, round(n·m / (n + m)))``.
"""

from __future__ import annotations

import math
import warnings
from types import ModuleType

import numpy as np

__all__ = [
    "chi_square",
    "chi_square_homogeneity",
    "fill_zeros",
    "hellinger",
    "jensen_shannon",
    "kl_divergence",
    "ks_p_value",
    "psi",
    "z_test",
]

KS_EXACT_MAX_N = 10_000


def _stats() -> ModuleType:
    # Imported on first use: a run whose methods are all distances (Evidently's default choice
    # at production sizes) never needs SciPy, whose stats module costs about 70 MB resident.
    from scipy import stats

    return stats


def _proportions(counts: np.ndarray) -> np.ndarray | None:
    values = np.asarray(counts, dtype=float)
    total = values.sum()
    return values / total if total > 0 else None


def fill_zeros(proportions: np.ndarray) -> np.ndarray:
    """Evidently's zero-bin fill for PSI and KL (per side)."""
    out = np.asarray(proportions, dtype=float).copy()
    nonzero = out[out > 0]
    if nonzero.size == 0:
        return out
    smallest = nonzero.min()
    out[out == 0] = smallest / 1e6 if smallest <= 1e-4 else 1e-4
    return out


def psi(reference: np.ndarray, current: np.ndarray) -> float:
    """Population stability index of two count (or proportion) vectors over the same bins."""
    r, c = _proportions(reference), _proportions(current)
    if r is None or c is None:
        return float("nan")
    r, c = fill_zeros(r), fill_zeros(c)
    return float(np.sum((r - c) * np.log(r / c)))


def kl_divergence(reference: np.ndarray, current: np.ndarray) -> float:
    """Kullback-Leibler divergence KL(reference ‖ current), natural log, zero-filled."""
    r, c = _proportions(reference), _proportions(current)
    if r is None or c is None:
        return float("nan")
    r, c = fill_zeros(r), fill_zeros(c)
    r, c = r / r.sum(), c / c.sum()  # scipy.stats.entropy renormalises
    keep = r > 0
    return float(np.sum(r[keep] * np.log(r[keep] / c[keep])))


def jensen_shannon(reference: np.ndarray, current: np.ndarray, base: float | None = None) -> float:
    """Jensen-Shannon distance of two count vectors (natural log unless ``base`` is given)."""
    p, q = _proportions(reference), _proportions(current)
    if p is None or q is None:
        return float("nan")
    m = (p + q) / 2.0

    def kl(a: np.ndarray) -> float:
        mask = a > 0
        return float(np.sum(a[mask] * np.log(a[mask] / m[mask])))

    divergence = (kl(p) + kl(q)) / 2.0
    if base is not None:
        divergence /= math.log(base)
    return float(np.sqrt(max(divergence, 0.0)))


def hellinger(reference: np.ndarray, current: np.ndarray) -> float:
    """Hellinger distance ``sqrt(1 − Σ sqrt(r·c))`` of two count vectors over the same bins."""
    p, q = _proportions(reference), _proportions(current)
    if p is None or q is None:
        return float("nan")
    overlap = float(np.clip(np.sum(np.sqrt(p * q)), 0.0, 1.0))
    return math.sqrt(1.0 - overlap)


def chi_square(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """Chi-square statistic and p-value of current counts against reference-scaled expectations."""
    ref = np.asarray(reference, dtype=float)
    cur = np.asarray(current, dtype=float)
    if ref.sum() == 0 or cur.sum() == 0 or ref.size < 2:
        return float("nan"), float("nan")
    expected = ref * cur.sum() / ref.sum()
    if np.any((expected == 0) & (cur > 0)):
        return float("inf"), 0.0
    keep = expected > 0
    statistic = float(np.sum((cur[keep] - expected[keep]) ** 2 / expected[keep]))
    return statistic, float(_stats().chi2.sf(statistic, int(keep.sum()) - 1))


def chi_square_homogeneity(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """Chi-square statistic and p-value of the two-sample test of homogeneity."""
    table = np.vstack([np.asarray(reference, float), np.asarray(current, float)])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or np.any(table.sum(axis=1) == 0):
        return float("nan"), float("nan")
    result = _stats().chi2_contingency(table, correction=False)
    return float(result.statistic), float(result.pvalue)


def z_test(ref_zeros: int, n_ref: int, cur_zeros: int, n_cur: int) -> tuple[float, float]:
    """Pooled two-proportion Z statistic and two-sided p-value.

    Args:
        ref_zeros, cur_zeros: rows holding the first sorted category (coded 0) on each side.
        n_ref, n_cur: rows on each side.
    """
    if n_ref == 0 or n_cur == 0:
        return float("nan"), float("nan")
    p1 = (n_ref - ref_zeros) / n_ref
    p2 = (n_cur - cur_zeros) / n_cur
    pooled = (p1 * n_ref + p2 * n_cur) / (n_ref + n_cur)
    if pooled in (0.0, 1.0):  # one category on both sides: no evidence of a difference
        return 0.0, 1.0
    z = (p1 - p2) / math.sqrt(pooled * (1 - pooled) * (1.0 / n_ref + 1.0 / n_cur))
    return z, float(2.0 * (1.0 - _stats().norm.cdf(abs(z))))


def ks_p_value(
    ref_below: int, n_ref: int, cur_below: int, n_cur: int, method: str = "auto"
) -> tuple[float, float]:
    """Two-sided two-sample Kolmogorov-Smirnov ``(D, p)`` from where the ECDFs differ most.

    Args:
        ref_below, cur_below: rows at or below the point where ``|F_ref − F_cur|`` is largest,
            so ``D = |ref_below / n_ref − cur_below / n_cur|``.
        method: ``"auto"`` (exact when both sides have at most 10,000 rows, as scipy),
            ``"exact"`` or ``"asymp"``.

    The exact null distribution of ``D`` depends only on ``D``, ``n_ref`` and ``n_cur``; it is
    taken from ``scipy.stats.ks_2samp`` on two 0/1 samples of the same sizes with the same ``D``
    (at most 20,000 values), so keelwatch uses scipy's own algorithm rather than a copy.
    """
    if method not in ("auto", "exact", "asymp"):
        raise ValueError(f"method must be auto, exact or asymp, got {method!r}")
    if n_ref == 0 or n_cur == 0:
        return float("nan"), float("nan")
    d = abs(ref_below / n_ref - cur_below / n_cur)
    if method == "auto":
        method = "exact" if max(n_ref, n_cur) <= KS_EXACT_MAX_N else "asymp"
    if method == "exact" and max(n_ref, n_cur) <= 4 * KS_EXACT_MAX_N:
        ref = np.repeat([0.0, 1.0], [ref_below, n_ref - ref_below])
        cur = np.repeat([0.0, 1.0], [cur_below, n_cur - cur_below])
        with warnings.catch_warnings():  # scipy falls back to asymp itself, and says so
            warnings.simplefilter("ignore", RuntimeWarning)
            result = _stats().ks_2samp(ref, cur, method="exact")
        return d, float(result.pvalue)
    m, n = sorted([float(n_ref), float(n_cur)], reverse=True)
    p = float(_stats().kstwo.sf(d, np.round(m * n / (m + n))))
    return d, float(np.clip(p, 0.0, 1.0))
