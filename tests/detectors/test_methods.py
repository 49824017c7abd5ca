"""Count-based drift methods against SciPy and hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from scipy.spatial import distance

from keelwatch.detectors import (
    adjust_p_values,
    chi_square,
    chi_square_homogeneity,
    doane_edges,
    fill_zeros,
    hellinger,
    jensen_shannon,
    kl_divergence,
    ks_p_value,
    psi,
    sturges_edges,
    z_test,
)


def test_psi_hand_computed() -> None:
    # r = (0.5, 0.5), c = (0.25, 0.75): 0.25·ln2 + (−0.25)·ln(2/3)
    expected = 0.25 * math.log(2) - 0.25 * math.log(0.5 / 0.75)
    assert psi(np.array([5, 5]), np.array([1, 3])) == pytest.approx(expected, abs=1e-15)


def test_fill_zeros_rules() -> None:
    assert fill_zeros(np.array([0.0, 0.5, 0.5])).tolist() == [1e-4, 0.5, 0.5]
    small = fill_zeros(np.array([0.0, 5e-5, 1 - 5e-5]))
    assert small[0] == pytest.approx(5e-11)


def test_kl_matches_scipy_entropy_after_fill(rng: np.random.Generator) -> None:
    ref, cur = rng.integers(0, 50, 12), rng.integers(0, 50, 12)
    ref[3] = 0
    expected = stats.entropy(fill_zeros(ref / ref.sum()), fill_zeros(cur / cur.sum()))
    assert kl_divergence(ref, cur) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("base", [None, 2.0])
def test_jensen_shannon_matches_scipy(rng: np.random.Generator, base: float | None) -> None:
    ref, cur = rng.integers(0, 50, 9), rng.integers(0, 50, 9)
    cur[0] = 0
    expected = distance.jensenshannon(ref / ref.sum(), cur / cur.sum(), base)
    assert jensen_shannon(ref, cur, base) == pytest.approx(expected, abs=1e-12)
    assert jensen_shannon(np.array([1, 0]), np.array([0, 1])) == pytest.approx(
        math.sqrt(math.log(2))
    )


def test_hellinger_both_formulas(rng: np.random.Generator) -> None:
    ref, cur = rng.integers(1, 50, 7), rng.integers(0, 50, 7)
    p, q = ref / ref.sum(), cur / cur.sum()
    nannyml = math.sqrt(np.sum((np.sqrt(p) - np.sqrt(q)) ** 2)) / math.sqrt(2)
    assert hellinger(ref, cur) == pytest.approx(nannyml, abs=1e-12)
    assert hellinger(np.array([1, 0]), np.array([0, 1])) == 1.0


def test_chi_square_matches_scipy(rng: np.random.Generator) -> None:
    ref, cur = rng.integers(20, 80, 6).astype(float), rng.integers(20, 80, 6).astype(float)
    expected = stats.chisquare(cur, ref * cur.sum() / ref.sum())
    statistic, p = chi_square(ref, cur)
    assert statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert p == pytest.approx(expected.pvalue, rel=1e-9)
    assert chi_square(np.array([3.0, 0.0]), np.array([1.0, 1.0])) == (math.inf, 0.0)


def test_chi_square_homogeneity_matches_scipy(rng: np.random.Generator) -> None:
    ref, cur = rng.integers(20, 80, 5), rng.integers(20, 80, 5)
    ref[2] = cur[2] = 0  # empty on both sides: dropped
    table = np.vstack([ref, cur])[:, [0, 1, 3, 4]]
    expected = stats.chi2_contingency(table, correction=False)
    statistic, p = chi_square_homogeneity(ref, cur)
    assert statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert p == pytest.approx(expected.pvalue, rel=1e-9)


def test_z_test_hand_computed() -> None:
    # ref: 30 of 100 coded 1; cur: 50 of 100. P = 0.4.
    z, p = z_test(70, 100, 50, 100)
    expected_z = (0.3 - 0.5) / math.sqrt(0.4 * 0.6 * (2 / 100))
    assert z == pytest.approx(expected_z)
    assert p == pytest.approx(2 * stats.norm.sf(abs(expected_z)), rel=1e-9)
    assert z_test(10, 10, 5, 5) == (0.0, 1.0)


@pytest.mark.parametrize(("n1", "n2"), [(40, 55), (300, 300), (9000, 700), (12000, 15000)])
def test_ks_p_value_matches_ks_2samp(rng: np.random.Generator, n1: int, n2: int) -> None:
    a = np.round(rng.normal(size=n1), 2)
    b = np.round(rng.normal(0.1, 1.0, size=n2), 2)
    expected = stats.ks_2samp(a, b)
    # Counts at or below the location of the statistic, as the SQL returns them.
    loc = expected.statistic_location
    ref_below, cur_below = int(np.sum(a <= loc)), int(np.sum(b <= loc))
    d, p = ks_p_value(ref_below, n1, cur_below, n2)
    assert d == pytest.approx(expected.statistic, abs=1e-15)
    assert p == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-15)
    _, p_asymp = ks_p_value(ref_below, n1, cur_below, n2, method="asymp")
    assert p_asymp == pytest.approx(stats.ks_2samp(a, b, method="asymp").pvalue, rel=1e-9)


@pytest.mark.parametrize("n", [3, 50, 1001, 123457])
def test_bin_edges_match_numpy(rng: np.random.Generator, n: int) -> None:
    values = rng.gamma(2.0, size=n)
    lo, hi = values.min(), values.max()
    np.testing.assert_array_equal(
        sturges_edges(lo, hi, n), np.histogram_bin_edges(values, "sturges")
    )
    np.testing.assert_array_equal(
        doane_edges(lo, hi, n, float(np.std(values)), float(stats.skew(values))),
        np.histogram_bin_edges(values, "doane"),
    )
    np.testing.assert_array_equal(sturges_edges(2.0, 2.0, 5), [1.5, 2.5])


def test_corrections_match_scipy(rng: np.random.Generator) -> None:
    p = rng.uniform(size=30) ** 3
    np.testing.assert_allclose(
        adjust_p_values(p, "bh"), stats.false_discovery_control(p, method="bh"), rtol=1e-12
    )
    np.testing.assert_allclose(adjust_p_values(p, "bonferroni"), np.minimum(1, p * 30))
    with pytest.raises(ValueError, match="correction"):
        adjust_p_values(p, "holm")
