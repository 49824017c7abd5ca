"""Drift configuration: methods per feature kind, thresholds, peer conventions, corrections.

keelwatch's production default decides with a distance and a fixed threshold (normed Wasserstein
for numeric features, Jensen-Shannon for categorical ones, drift when >= 0.1), because at
production sample sizes every p-value test flags practically any feature (Evidently #50): with a
million rows a shift of a hundredth of a standard deviation is "significant". PSI and chi-square
run alongside for context.

``selection="evidently"`` picks each feature's deciding method by Evidently 0.7's rule instead
(``n`` = non-null reference rows, ``u`` = distinct values of both sides together):

============================  =================================  ==========================
feature                        n <= 1000                          n > 1000
============================  =================================  ==========================
numeric, u <= 2                Z-test                             Jensen-Shannon
numeric, 2 < u <= 5            chi-square                         Jensen-Shannon
numeric, u > 5                 Kolmogorov-Smirnov                 Wasserstein (normed)
categorical                    chi-square (Z-test if u <= 2)      Jensen-Shannon
============================  =================================  ==========================
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ._counts import COMPATS
from ._ecdf import DEFAULT_BUDGET
from ._multiple import CORRECTIONS

__all__ = [
    "DEFAULT_THRESHOLDS",
    "METHODS",
    "P_VALUE_METHODS",
    "DriftConfig",
    "evidently_method",
]

#: Score thresholds (drift when score >= threshold) and p-value alphas (drift when p < alpha).
DEFAULT_THRESHOLDS = {
    "chi_square": 0.05,
    "hellinger": 0.1,
    "jensen_shannon": 0.1,
    "kl_div": 0.1,
    "ks": 0.05,
    "psi": 0.1,
    "wasserstein": 0.1,
    "z_test": 0.05,
}
METHODS = tuple(sorted(DEFAULT_THRESHOLDS))
P_VALUE_METHODS = frozenset({"chi_square", "ks", "z_test"})
NUMERIC_ONLY = frozenset({"ks", "wasserstein"})
SELECTIONS = ("fixed", "evidently")


def evidently_method(kind: str, n_reference: int, distinct: int) -> str:
    """Evidently 0.7's default test for a feature (see the module docstring)."""
    if n_reference <= 1000:
        if kind == "numeric" and distinct > 5:
            return "ks"
        if kind == "numeric" and distinct > 2:
            return "chi_square"
        return "chi_square" if distinct > 2 else "z_test"
    if kind == "numeric" and distinct > 5:
        return "wasserstein"
    return "jensen_shannon"


@dataclass(frozen=True)
class DriftConfig:
    """How a drift run scores and decides.

    Args:
        numeric_methods, categorical_methods: methods computed per feature kind; the first
            decides unless ``selection`` picks the deciding method.
        thresholds: per method, overriding ``DEFAULT_THRESHOLDS``.
        feature_thresholds: per feature and method (e.g. calibrated ones), overriding both.
        drift_share: dataset drift when the share of drifted features is at least this.
        min_samples: fewer current values than this never count as drift.
        compat: binning and log conventions of ``"keelwatch"``, ``"evidently"`` (0.7) or
            ``"nannyml"`` (0.13; Doane bins on the reference, Jensen-Shannon in base 2).
        selection: ``"fixed"`` or ``"evidently"`` (Evidently's rule picks the deciding method).
        correction: ``"none"``, ``"bonferroni"`` or ``"bh"`` over the deciding p-value tests.
        ks_method: ``"auto"``, ``"exact"`` or ``"asymp"`` p-values for Kolmogorov-Smirnov.
        exact_max_rows: windows with more predictions than this compute the numeric methods
            from fine histograms in one pass (``_grid``: W1 within ``2 / grid_bins`` of the
            baseline's range) instead of sorting every value; ``0`` means always exact.
        grid_bins: cells of that fine grid per feature (at least the Sturges bins).
        exact_budget: values (both sides, all features of one query) the exact pass holds at
            once. Lower holds less memory and reads the window more often: at 1M rows x 20
            features, in a process that starts at 270 MB, 20M values (two queries) peaked at
            682-694 MB in 1.6-1.7 s, 2M (one feature a query) at 476-479 MB in 4.9-5.2 s.
            Results and run ids do not depend on it.
    """

    numeric_methods: tuple[str, ...] = ("wasserstein", "psi")
    categorical_methods: tuple[str, ...] = ("jensen_shannon", "chi_square")
    thresholds: dict[str, float] = field(default_factory=dict)
    feature_thresholds: dict[str, dict[str, float]] = field(default_factory=dict)
    drift_share: float = 0.5
    min_samples: int = 30
    compat: str = "keelwatch"
    selection: str = "fixed"
    correction: str = "none"
    ks_method: str = "auto"
    exact_max_rows: int = 2_000_000
    grid_bins: int = 10_000
    exact_budget: int = DEFAULT_BUDGET

    def __post_init__(self) -> None:
        for method in (*self.numeric_methods, *self.categorical_methods, *self.thresholds):
            if method not in DEFAULT_THRESHOLDS:
                raise ValueError(f"unknown drift method: {method!r}")
        for method in self.categorical_methods:
            if method in NUMERIC_ONLY:
                raise ValueError(f"{method} does not apply to categorical features")
        if self.selection == "fixed" and not (self.numeric_methods and self.categorical_methods):
            raise ValueError("each feature kind needs at least one drift method")
        if not 0.0 < self.drift_share <= 1.0:
            raise ValueError(f"drift_share must be in (0, 1], got {self.drift_share}")
        if self.compat not in COMPATS:
            raise ValueError(f"compat must be one of {COMPATS}, got {self.compat!r}")
        if self.selection not in SELECTIONS:
            raise ValueError(f"selection must be one of {SELECTIONS}, got {self.selection!r}")
        if self.correction not in CORRECTIONS:
            raise ValueError(f"correction must be one of {CORRECTIONS}, got {self.correction!r}")
        if self.exact_max_rows < 0:
            raise ValueError(f"exact_max_rows must be >= 0, got {self.exact_max_rows}")
        if self.exact_budget < 1:
            raise ValueError(f"exact_budget must be >= 1, got {self.exact_budget}")
        if self.grid_bins < 1:
            raise ValueError(f"grid_bins must be >= 1, got {self.grid_bins}")
        if self.ks_method not in ("auto", "exact", "asymp"):
            raise ValueError(f"ks_method must be auto, exact or asymp, got {self.ks_method!r}")

    @classmethod
    def evidently(cls, **overrides: object) -> DriftConfig:
        """Evidently 0.7's ``DataDriftPreset`` defaults: its test choice, bins and thresholds."""
        options: dict[str, object] = {
            "numeric_methods": (),
            "categorical_methods": (),
            "compat": "evidently",
            "selection": "evidently",
        }
        options.update(overrides)
        return cls(**options)  # type: ignore[arg-type]

    def threshold(self, method: str, feature: str = "") -> float:
        per_feature = self.feature_thresholds.get(feature, {})
        if method in per_feature:
            return per_feature[method]
        return self.thresholds.get(method, DEFAULT_THRESHOLDS[method])
