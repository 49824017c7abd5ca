"""False-alarm rates of the p-value methods on data without drift, and power on known shifts.

200 seeds at small sample sizes, computed from numpy arrays through the same count and ECDF
functions the SQL feeds (the SQL side is checked against SciPy in test_drift.py). With a rate
``alpha`` per test, the number of alarms in 200 tries is binomial; the bound allows three
standard deviations above ``alpha``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from keelwatch.detectors import (
    adjust_p_values,
    chi_square,
    chi_square_homogeneity,
    ks_p_value,
    z_test,
)

SEEDS = 200
ALPHA = 0.05
BOUND = ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / SEEDS)


def _ks(a: np.ndarray, b: np.ndarray) -> float:
    """KS p-value from the counts at the largest ECDF gap, as the SQL returns them."""
    points = np.sort(np.concatenate([a, b]))
    ref = np.searchsorted(np.sort(a), points, side="right")
    cur = np.searchsorted(np.sort(b), points, side="right")
    i = int(np.argmax(np.abs(ref / a.size - cur / b.size)))
    return ks_p_value(int(ref[i]), a.size, int(cur[i]), b.size)[1]


def _chi(a: np.ndarray, b: np.ndarray, k: int, test: object = chi_square_homogeneity) -> float:
    return test(np.bincount(a, minlength=k), np.bincount(b, minlength=k))[1]  # type: ignore[operator]


def _z(a: np.ndarray, b: np.ndarray) -> float:
    return z_test(int(np.sum(a == 0)), a.size, int(np.sum(b == 0)), b.size)[1]


def _rate(test: str, shift: float) -> float:
    alarms = 0
    for seed in range(SEEDS):
        rng = np.random.default_rng(seed)
        if test == "ks":
            p = _ks(rng.normal(size=150), rng.normal(shift, 1.0, size=100))
        elif test == "chi_square":
            probs = np.array([0.4, 0.3, 0.2, 0.1])
            moved = probs + shift * np.array([-1.0, 0.0, 0.0, 1.0])
            p = _chi(rng.choice(4, 300, p=probs), rng.choice(4, 200, p=moved), 4)
        else:
            p = _z(rng.binomial(1, 0.3, 300), rng.binomial(1, 0.3 + shift, 200))
        alarms += p < ALPHA
    return alarms / SEEDS


@pytest.mark.parametrize("test", ["ks", "chi_square", "z_test"])
def test_false_alarm_rate_at_most_alpha(test: str) -> None:
    assert _rate(test, 0.0) <= BOUND


def test_goodness_of_fit_chi_square_over_alarms() -> None:
    """Evidently's chi-square treats the reference proportions as exact: with 300 reference and
    200 current rows it alarms about four times as often as alpha (kept for compat only)."""
    alarms = 0
    probs = np.array([0.4, 0.3, 0.2, 0.1])
    for seed in range(SEEDS):
        rng = np.random.default_rng(seed)
        a, b = rng.choice(4, 300, p=probs), rng.choice(4, 200, p=probs)
        alarms += _chi(a, b, 4, chi_square) < ALPHA
    assert alarms / SEEDS > BOUND


@pytest.mark.parametrize(("test", "shift"), [("ks", 0.6), ("chi_square", 0.15), ("z_test", 0.2)])
def test_known_shifts_detected(test: str, shift: float) -> None:
    assert _rate(test, shift) >= 0.8


@pytest.mark.parametrize("correction", ["bonferroni", "bh"])
def test_dataset_false_alarm_with_correction(correction: str) -> None:
    """Ten unshifted features: without correction about 40% of runs have some alarm; with
    Bonferroni or BH (equal to Bonferroni when all nulls are true) at most alpha."""
    raw = corrected = 0
    for seed in range(SEEDS):
        rng = np.random.default_rng(10_000 + seed)
        p = np.array([_ks(rng.normal(size=120), rng.normal(size=80)) for _ in range(10)])
        raw += bool(np.any(p < ALPHA))
        corrected += bool(np.any(adjust_p_values(p, correction) < ALPHA))
    assert raw / SEEDS > 0.2
    assert corrected / SEEDS <= BOUND
