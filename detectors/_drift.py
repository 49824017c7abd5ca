"""Per-feature drift of a window of predictions against a model's baseline.

One run computes, for every baseline feature, the configured methods (``_config``) from a few
aggregate queries: exact ECDF distances for Wasserstein and Kolmogorov-Smirnov (``_ecdf``),
counts over shared bins for the binned methods (``_counts``), category counts for categorical
features. Then each feature's deciding method is compared with its threshold, the deciding
p-values are corrected for multiple testing if asked, and the share of drifted features gives
the dataset-level verdict.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial

import numpy as np

from keelwatch.store import Store

from ._baseline import Baseline, FeatureProfile
from ._config import (
    DEFAULT_THRESHOLDS,
    NUMERIC_ONLY,
    P_VALUE_METHODS,
    DriftConfig,
    evidently_method,
)
from ._counts import Known, Pairs, few_value_counts, numeric_pairs
from ._ecdf import EcdfDistances, ecdf_pass, held
from ._grid import grid_pass
from ._methods import (
    chi_square,
    chi_square_homogeneity,
    hellinger,
    jensen_shannon,
    kl_divergence,
    ks_p_value,
    psi,
    z_test,
)
from ._multiple import adjust_p_values
from ._sql import (
    FEW_VALUES_CAP,
    Window,
    category_counts,
    window_count,
)
from ._values import KeyValues

__all__ = ["DEFAULT_THRESHOLDS", "DriftConfig", "DriftResult", "DriftRun", "run_drift"]


@dataclass(frozen=True)
class DriftResult:
    """One feature, one method, one window.

    ``score`` is the distance, or the test statistic of a p-value method (KS ``D``, chi-square,
    Z); ``p_adjusted`` is the p-value after the run's multiple-testing correction.
    """

    feature: str
    kind: str
    method: str
    score: float
    p_value: float | None
    threshold: float
    drifted: bool
    n_reference: int
    n_current: int
    deciding: bool
    p_adjusted: float | None = None


@dataclass(frozen=True)
class DriftRun:
    """All drift results of one window against one baseline."""

    run_id: str
    model: str
    window: Window
    baseline_id: str
    n_current: int
    results: tuple[DriftResult, ...]
    drift_share_threshold: float = 0.5
    #: Per key of the window's numeric maps, data quality's counts, when the run read every
    #: value on the fine grid (large windows): ``quality(values=...)`` then reads nothing again.
    window_values: Mapping[str, KeyValues] | None = field(default=None, repr=False, compare=False)

    @property
    def deciding(self) -> tuple[DriftResult, ...]:
        return tuple(r for r in self.results if r.deciding)

    @property
    def drifted_features(self) -> tuple[DriftResult, ...]:
        return tuple(r for r in self.deciding if r.drifted)

    @property
    def drift_share(self) -> float:
        decided = self.deciding
        return len(self.drifted_features) / len(decided) if decided else 0.0

    @property
    def dataset_drift(self) -> bool:
        """Whether the share of drifted features reaches the configured ``drift_share``."""
        return bool(self.deciding) and self.drift_share >= self.drift_share_threshold

    def result(self, feature: str, method: str) -> DriftResult:
        for r in self.results:
            if r.feature == feature and r.method == method:
                return r
        raise KeyError((feature, method))


def _decide(
    profile: FeatureProfile,
    method: str,
    score: float,
    p_value: float | None,
    n_ref: int,
    n_cur: int,
    config: DriftConfig,
    deciding: bool,
) -> DriftResult:
    threshold = config.threshold(method, profile.name)
    if n_cur < config.min_samples or math.isnan(score):
        drifted = False
    elif method in P_VALUE_METHODS:
        drifted = p_value is not None and p_value < threshold
    else:
        drifted = score >= threshold
    return DriftResult(
        profile.name,
        profile.kind,
        method,
        score,
        p_value,
        threshold,
        drifted,
        n_ref,
        n_cur,
        deciding,
    )


def _binned_score(
    method: str, ref: np.ndarray, cur: np.ndarray, config: DriftConfig
) -> tuple[float, float | None]:
    if method == "psi":
        return psi(ref, cur), None
    if method == "kl_div":
        return kl_divergence(ref, cur), None
    if method == "jensen_shannon":
        return jensen_shannon(ref, cur, 2.0 if config.compat == "nannyml" else None), None
    if method == "hellinger":
        return hellinger(ref, cur), None
    if method == "chi_square":
        if config.compat == "evidently":
            return chi_square(ref, cur)
        return chi_square_homogeneity(ref, cur)
    if method == "z_test":
        # First sorted category (or value, or bin) is coded 0, as Evidently does.
        return z_test(int(ref[0]), int(ref.sum()), int(cur[0]), int(cur.sum()))
    raise ValueError(f"{method} is not a binned method")


def _methods_per_feature(
    baseline: Baseline,
    config: DriftConfig,
    numeric: Sequence[FeatureProfile],
    current_cats: dict[str, dict[str, int]],
    few: Known,
) -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    if config.selection == "fixed":
        for p in numeric:
            out[p.name] = config.numeric_methods
        for name in current_cats:
            out[name] = config.categorical_methods
        return out
    distinct = {p.name: p.distinct for p in numeric}
    for name, (ref, cur) in few.items():
        # The window's counts are dropped above FEW_VALUES_CAP values: then the union is > 5.
        distinct[name] = FEW_VALUES_CAP + 1 if cur is None else len(set(ref) | set(cur))
    for p in numeric:
        first = evidently_method("numeric", p.count, distinct.get(p.name, 0))
        out[p.name] = (first, *[m for m in config.numeric_methods if m != first])
    for name, counts in current_cats.items():
        union = set(baseline.feature(name).categories) | set(counts)
        first = evidently_method("categorical", baseline.feature(name).count, len(union))
        rest = [m for m in config.categorical_methods if m != first]
        out[name] = (first, *rest)
    return out


def _numeric_results(
    p: FeatureProfile,
    methods: tuple[str, ...],
    ecdf: EcdfDistances | None,
    binned: Pairs,
    hell: Pairs,
    config: DriftConfig,
) -> list[DriftResult]:
    results = []
    for i, method in enumerate(methods):
        if method in NUMERIC_ONLY:
            if ecdf is None:
                continue
            if method == "wasserstein":
                score, p_value = ecdf.wasserstein / max(p.std or 0.0, 0.001), None
            elif ecdf.ks_ref_below is None or ecdf.ks_cur_below is None:
                continue
            else:
                score, p_value = ks_p_value(
                    ecdf.ks_ref_below, ecdf.n_ref, ecdf.ks_cur_below, ecdf.n_cur, config.ks_method
                )
            results.append(
                _decide(p, method, score, p_value, ecdf.n_ref, ecdf.n_cur, config, i == 0)
            )
            continue
        pairs = hell if method == "hellinger" and config.compat == "evidently" else binned
        if p.name not in pairs:
            continue
        ref, cur = pairs[p.name]
        score, p_value = _binned_score(method, ref, cur, config)
        results.append(
            _decide(p, method, score, p_value, int(ref.sum()), int(cur.sum()), config, i == 0)
        )
    return results


def _categorical_results(
    p: FeatureProfile, methods: tuple[str, ...], current: dict[str, int], config: DriftConfig
) -> list[DriftResult]:
    keys = sorted(set(p.categories) | set(current))
    ref = np.array([p.categories.get(k, 0) for k in keys], dtype=float)
    cur = np.array([current.get(k, 0) for k in keys], dtype=float)
    results = []
    for i, method in enumerate(methods):
        score, p_value = _binned_score(method, ref, cur, config)
        results.append(_decide(p, method, score, p_value, p.count, int(cur.sum()), config, i == 0))
    return results


def _correct(results: list[DriftResult], config: DriftConfig) -> list[DriftResult]:
    tested = [
        i
        for i, r in enumerate(results)
        if r.deciding
        and r.method in P_VALUE_METHODS
        and r.p_value is not None
        and not math.isnan(r.p_value)
        and r.n_current >= config.min_samples
    ]
    if not tested:
        return results
    adjusted = adjust_p_values(np.array([results[i].p_value for i in tested]), config.correction)
    out = list(results)
    for i, q in zip(tested, adjusted, strict=True):
        out[i] = replace(out[i], p_adjusted=float(q), drifted=bool(q < out[i].threshold))
    return out


def run_drift(
    store: Store, baseline: Baseline, window: Window, config: DriftConfig | None = None
) -> DriftRun:
    """Compute every configured method for every baseline feature over ``window``."""
    config = config or DriftConfig()
    numeric = [p for p in baseline.features if p.kind == "numeric" and p.count > 0]
    categorical = [p for p in baseline.features if p.kind == "categorical" and p.count > 0]
    current_cats = category_counts(store, window, [p.name for p in categorical])
    n_window = window_count(store, window)
    exact = not (config.exact_max_rows and n_window > config.exact_max_rows)
    # Evidently's test choice: only a reference with at most 5 distinct values can leave the
    # union of both sides at most 5; their value counts also serve the per-value binning. The
    # exact pass counts the window's values of those features in its first read.
    few_names = [p.name for p in numeric if p.distinct <= 5] if config.selection != "fixed" else []
    few: Known = {}
    if few_names and not exact:
        few = few_value_counts(store, window, baseline.baseline_id, few_names)
    unknown = [name for name in few_names if name not in few]
    # Taken as few-valued until counted: no ECDF distances unless configured beside the test.
    guess: Known = {**few, **{name: ({}, {}) for name in unknown}}
    methods = _methods_per_feature(baseline, config, numeric, current_cats, guess)
    ecdf_names = [p.name for p in numeric if NUMERIC_ONLY & set(methods[p.name])]
    sizes = {p.name: held(p.count, n_window) for p in numeric}
    small = bool(numeric) and 2 * n_window <= min(p.count for p in numeric)
    exact_of = partial(
        ecdf_pass,
        store,
        window,
        baseline.baseline_id,
        sizes=sizes,
        budget=config.exact_budget,
        small_window=small,
    )
    ks_names = {p.name for p in numeric if "ks" in methods[p.name]}
    if exact:
        window_values = None
        exact_pass = exact_of(ecdf_names, ks=ks_names, counted=unknown)
        ecdf = exact_pass.distances
        if unknown:
            few = few_value_counts(
                store, window, baseline.baseline_id, unknown, exact_pass.window_counts
            )
            methods = _methods_per_feature(baseline, config, numeric, current_cats, few)
            # More than 5 values in both sides together: a distance test after all.
            late = [
                p.name
                for p in numeric
                if NUMERIC_ONLY & set(methods[p.name]) and p.name not in ecdf_names
            ]
            ks_names = {p.name for p in numeric if "ks" in methods[p.name]}
            if late:
                ecdf.update(exact_of(late, ks=ks_names).distances)
    wanted = {m for p in numeric for m in methods[p.name]}
    binned_names = [p.name for p in numeric if set(methods[p.name]) - NUMERIC_ONLY]
    if exact:
        binned = numeric_pairs(store, window, baseline, binned_names, config.compat, known=few)
    else:
        found_pass = grid_pass(store, window, baseline.baseline_id, numeric, config.grid_bins)
        grid, window_values = found_pass.counts, found_pass.values
        ecdf = {}
        for name in ecdf_names:
            found = grid[name].distances(name in ks_names) if name in grid else None
            if found is not None:
                ecdf[name] = found
        if config.compat == "keelwatch":
            binned = {name: grid[name].binned() for name in binned_names if name in grid}
        else:
            binned = numeric_pairs(store, window, baseline, binned_names, config.compat, known=few)
    hell: Pairs = {}
    if "hellinger" in wanted and config.compat == "evidently":
        hell_names = [p.name for p in numeric if "hellinger" in methods[p.name]]
        hell = numeric_pairs(store, window, baseline, hell_names, "evidently", hellinger=True)
    results: list[DriftResult] = []
    for p in numeric:
        results.extend(_numeric_results(p, methods[p.name], ecdf.get(p.name), binned, hell, config))
    for p in categorical:
        results.extend(_categorical_results(p, methods[p.name], current_cats[p.name], config))
    if config.correction != "none":
        results = _correct(results, config)
    return DriftRun(
        uuid.uuid4().hex,
        window.model,
        window,
        baseline.baseline_id,
        n_window,
        tuple(results),
        config.drift_share,
        window_values,
    )
