"""Per-feature drift of a window of predictions against a model's baseline.

Default methods behave at production sample sizes, where p-value tests flag every feature: the
deciding method is a distance with a fixed threshold (normed Wasserstein for numeric features,
Jensen-Shannon for categorical ones, both >= 0.1 as in Evidently). PSI and chi-square are computed
alongside and stored with their own thresholds. Bins for PSI are the baseline's Sturges bins.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np
import pyarrow as pa
from keelwatch.store import Store

from ._baseline import Baseline, FeatureProfile
from ._methods import chi_square, jensen_shannon, psi
from ._sql import Window, bin_counts, category_counts, wasserstein, window_count

__all__ = ["DEFAULT_THRESHOLDS", "DriftConfig", "DriftResult", "DriftRun", "run_drift", "store_run"]

NUMERIC_METHODS = ("wasserstein", "psi")
CATEGORICAL_METHODS = ("jensen_shannon", "chi_square")
#: Score thresholds (drift when score >= threshold) and p-value alphas (drift when p < alpha).
DEFAULT_THRESHOLDS = {"wasserstein": 0.1, "psi": 0.1, "jensen_shannon": 0.1, "chi_square": 0.05}
P_VALUE_METHODS = frozenset({"chi_square"})


@dataclass(frozen=True)
class DriftConfig:
    """Which methods run per feature kind (the first decides), their thresholds, and the
    dataset-level rule (drift when the share of drifted features >= ``drift_share``)."""

    numeric_methods: tuple[str, ...] = NUMERIC_METHODS
    categorical_methods: tuple[str, ...] = CATEGORICAL_METHODS
    thresholds: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))
    drift_share: float = 0.5
    min_samples: int = 30

    def __post_init__(self) -> None:
        for method in (*self.numeric_methods, *self.categorical_methods):
            if method not in DEFAULT_THRESHOLDS:
                raise ValueError(f"unknown drift method: {method!r}")
        if not self.numeric_methods or not self.categorical_methods:
            raise ValueError("each feature kind needs at least one drift method")
        if not 0.0 < self.drift_share <= 1.0:
            raise ValueError(f"drift_share must be in (0, 1], got {self.drift_share}")

    def threshold(self, method: str) -> float:
        return self.thresholds.get(method, DEFAULT_THRESHOLDS[method])


@dataclass(frozen=True)
class DriftResult:
    """One feature, one method, one window."""

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


@dataclass(frozen=True)
class DriftRun:
    """All drift results of one window against one baseline."""

    run_id: str
    model: str
    window: Window
    baseline_id: str
    n_current: int
    results: tuple[DriftResult, ...]

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


def _result(
    profile: FeatureProfile,
    method: str,
    score: float,
    p_value: float | None,
    n_ref: int,
    n_cur: int,
    config: DriftConfig,
    deciding: bool,
) -> DriftResult:
    threshold = config.threshold(method)
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


def _numeric(
    store: Store, window: Window, baseline: Baseline, profile: FeatureProfile, config: DriftConfig
) -> list[DriftResult]:
    results = []
    edges = np.asarray(profile.edges)
    for i, method in enumerate(config.numeric_methods):
        if method == "wasserstein":
            distance, n_ref, n_cur = wasserstein(store, window, profile.name, baseline.baseline_id)
            score = distance / max(profile.std or 0.0, 0.001)
            results.append(_result(profile, method, score, None, n_ref, n_cur, config, i == 0))
            continue
        current = bin_counts(store, window, profile.name, edges)
        reference = np.asarray(profile.counts, dtype=float)
        n_cur = int(current.sum())
        if method == "psi":
            score, p_value = psi(reference, current), None
        elif method == "jensen_shannon":
            score, p_value = jensen_shannon(reference, current), None
        else:
            score, p_value = chi_square(reference, current)
        results.append(
            _result(profile, method, score, p_value, profile.count, n_cur, config, i == 0)
        )
    return results


def _categorical(
    store: Store, window: Window, profile: FeatureProfile, config: DriftConfig
) -> list[DriftResult]:
    current = category_counts(store, window, profile.name)
    keys = sorted(set(profile.categories) | set(current))
    ref = np.array([profile.categories.get(k, 0) for k in keys], dtype=float)
    cur = np.array([current.get(k, 0) for k in keys], dtype=float)
    n_cur = int(cur.sum())
    results = []
    for i, method in enumerate(config.categorical_methods):
        if method == "chi_square":
            score, p_value = chi_square(ref, cur)
        elif method == "jensen_shannon":
            score, p_value = jensen_shannon(ref, cur), None
        elif method == "psi":
            score, p_value = psi(ref, cur), None
        else:
            raise ValueError(f"{method} does not apply to categorical features")
        results.append(
            _result(profile, method, score, p_value, profile.count, n_cur, config, i == 0)
        )
    return results


def run_drift(
    store: Store, baseline: Baseline, window: Window, config: DriftConfig | None = None
) -> DriftRun:
    """Compute every configured method for every baseline feature over ``window``."""
    config = config or DriftConfig()
    results: list[DriftResult] = []
    for profile in baseline.features:
        if profile.count == 0:
            continue
        if profile.kind == "numeric":
            results.extend(_numeric(store, window, baseline, profile, config))
        else:
            results.extend(_categorical(store, window, profile, config))
    return DriftRun(
        uuid.uuid4().hex,
        window.model,
        window,
        baseline.baseline_id,
        window_count(store, window),
        tuple(results),
    )


def store_run(store: Store, run: DriftRun) -> None:
    """Append a run's results to ``drift_results``."""
    if not run.results:
        return
    n = len(run.results)
    now = datetime.now(timezone.utc)
    ts = pa.timestamp("us", tz="UTC")
    store.insert(
        "drift_results",
        pa.table(
            {
                "project": [run.window.project] * n,
                "model": [run.model] * n,
                "run_id": [run.run_id] * n,
                "window_start": pa.array([run.window.start] * n, ts),
                "window_end": pa.array([run.window.end] * n, ts),
                "baseline_id": [run.baseline_id] * n,
                "feature": [r.feature for r in run.results],
                "kind": [r.kind for r in run.results],
                "method": [r.method for r in run.results],
                "score": pa.array([r.score for r in run.results], pa.float64()),
                "p_value": pa.array([r.p_value for r in run.results], pa.float64()),
                "threshold": [r.threshold for r in run.results],
                "drifted": pa.array([int(r.drifted) for r in run.results], pa.uint8()),
                "n_reference": pa.array([r.n_reference for r in run.results], pa.uint64()),
                "n_current": pa.array([r.n_current for r in run.results], pa.uint64()),
                "computed_at": pa.array([now] * n, pa.timestamp("ms", tz="UTC")),
            }
        ),
        dedup_token=run.run_id,
    )
