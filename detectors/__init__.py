"""Detectors: drift and the other checks, computed in ClickHouse against stored baselines."""

from __future__ import annotations

from ._baseline import (
    Baseline,
    BaselineError,
    FeatureProfile,
    get_baseline,
    list_baselines,
    load_frame,
    register_baseline,
    sturges_edges,
)
from ._drift import DEFAULT_THRESHOLDS, DriftConfig, DriftResult, DriftRun, run_drift, store_run
from ._methods import chi_square, fill_zeros, jensen_shannon, psi
from ._sql import Window

__all__ = [
    "DEFAULT_THRESHOLDS",
    "Baseline",
    "BaselineError",
    "DriftConfig",
    "DriftResult",
    "DriftRun",
    "FeatureProfile",
    "Window",
    "chi_square",
    "fill_zeros",
    "get_baseline",
    "jensen_shannon",
    "list_baselines",
    "load_frame",
    "psi",
    "register_baseline",
    "run_drift",
    "store_run",
    "sturges_edges",
]
