"""Detectors: drift and the other checks, computed in ClickHouse against stored baselines."""

from __future__ import annotations

from ._backfill import Backfill, backfill
from ._baseline import (
    Baseline,
    BaselineError,
    FeatureProfile,
    get_baseline,
    list_baselines,
    load_frame,
    register_baseline,
)
from ._binning import doane_edges, sturges_edges
from ._calibration import Calibration, ReliabilityPoint, calibration, multiclass_calibration
from ._config import DEFAULT_THRESHOLDS, METHODS, P_VALUE_METHODS, DriftConfig, evidently_method
from ._cost import Cost, cost
from ._detect import Detection, DetectorFailure, detect, detect_window
from ._drift import DriftResult, DriftRun, run_drift
from ._labelled import Labels, labels
from ._methods import (
    chi_square,
    chi_square_homogeneity,
    fill_zeros,
    hellinger,
    jensen_shannon,
    kl_divergence,
    ks_p_value,
    psi,
    z_test,
)
from ._multiple import adjust_p_values
from ._multivariate import DomainClassifierDrift, domain_classifier_drift
from ._operations import Operations, operations
from ._performance import Classification, Regression, classification, regression
from ._prices import (
    ComputePrice,
    PriceError,
    TokenPrice,
    list_compute_prices,
    list_token_prices,
    set_compute_price,
    set_token_price,
)
from ._quality import FeatureQuality, Freshness, Quality, Volume, quality
from ._reconstruction import ReconstructionDrift, reconstruction_drift
from ._settings import (
    DriftSettings,
    DriftSettingsError,
    ModelDrift,
    ThresholdCalibration,
    load_drift_settings,
    parse_drift_settings,
)
from ._sql import Window, format_segment, parse_segment, segment_of
from ._stored import store_detection, store_run
from ._thresholds import (
    CalibratedThreshold,
    as_feature_thresholds,
    calibrate_thresholds,
    stored_calibration,
)
from ._windows import (
    MAX_SEGMENT_VALUES,
    MAX_WINDOWS,
    count_windows,
    latest_count_window,
    parse_every,
    run_id,
    segment_values,
    segment_windows,
    time_windows,
)

__all__ = [
    "DEFAULT_THRESHOLDS",
    "MAX_SEGMENT_VALUES",
    "MAX_WINDOWS",
    "METHODS",
    "P_VALUE_METHODS",
    "Backfill",
    "Baseline",
    "BaselineError",
    "CalibratedThreshold",
    "Calibration",
    "Classification",
    "ComputePrice",
    "Cost",
    "Detection",
    "DetectorFailure",
    "DomainClassifierDrift",
    "DriftConfig",
    "DriftResult",
    "DriftRun",
    "DriftSettings",
    "DriftSettingsError",
    "FeatureProfile",
    "FeatureQuality",
    "Freshness",
    "Labels",
    "ModelDrift",
    "Operations",
    "PriceError",
    "Quality",
    "ReconstructionDrift",
    "Regression",
    "ReliabilityPoint",
    "ThresholdCalibration",
    "TokenPrice",
    "Volume",
    "Window",
    "adjust_p_values",
    "as_feature_thresholds",
    "backfill",
    "calibrate_thresholds",
    "calibration",
    "chi_square",
    "chi_square_homogeneity",
    "classification",
    "cost",
    "count_windows",
    "detect",
    "detect_window",
    "doane_edges",
    "domain_classifier_drift",
    "evidently_method",
    "fill_zeros",
    "format_segment",
    "get_baseline",
    "hellinger",
    "jensen_shannon",
    "kl_divergence",
    "ks_p_value",
    "labels",
    "latest_count_window",
    "list_baselines",
    "list_compute_prices",
    "list_token_prices",
    "load_drift_settings",
    "load_frame",
    "multiclass_calibration",
    "operations",
    "parse_drift_settings",
    "parse_every",
    "parse_segment",
    "psi",
    "quality",
    "reconstruction_drift",
    "register_baseline",
    "regression",
    "run_drift",
    "run_id",
    "segment_of",
    "segment_values",
    "segment_windows",
    "set_compute_price",
    "set_token_price",
    "store_detection",
    "store_run",
    "stored_calibration",
    "sturges_edges",
    "time_windows",
    "z_test",
]
