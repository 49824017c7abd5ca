"""Drift settings per model, read from a YAML file: what the server's runs compute and decide.

::

    models:
      - model: "fraud-*"            # fnmatch pattern over model names; the first match applies
        preset: evidently           # start from DriftConfig.evidently() (default: DriftConfig())
        correction: bh
      - model: churn
        numeric_methods: [wasserstein, psi]
        thresholds: {wasserstein: 0.15}
        feature_thresholds: {tenure: {wasserstein: 0.05}}
        calibrate: {chunk_rows: 10000, chunks: 20, quantile: 0.95}
      - model: "*"
        exact_budget: 5000000       # values the exact pass holds at once (memory against speed)

Every key but ``model``, ``preset`` and ``calibrate`` is a :class:`DriftConfig` field with the
same meaning. ``calibrate`` derives per-feature thresholds from the model's baseline
(:func:`calibrate_thresholds`, leave-one-chunk-out) for the entry's distance methods; a
threshold written in ``feature_thresholds`` wins over a calibrated one. A model that no entry
matches runs ``DriftConfig()``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from keelwatch._yaml_file import check_entry, read_yaml
from keelwatch.store import Store

from ._baseline import Baseline
from ._config import METHODS, P_VALUE_METHODS, DriftConfig
from ._thresholds import as_feature_thresholds, stored_calibration

__all__ = [
    "DriftSettings",
    "DriftSettingsError",
    "ModelDrift",
    "ThresholdCalibration",
    "load_drift_settings",
    "parse_drift_settings",
]

PRESETS = ("keelwatch", "evidently")
_METHOD_LISTS = ("numeric_methods", "categorical_methods")
_NUMBERS = ("drift_share",)
_INTEGERS = ("min_samples", "exact_max_rows", "grid_bins", "exact_budget")
_WORDS = ("compat", "selection", "correction", "ks_method")
_FIELDS = {
    "model",
    "preset",
    "calibrate",
    "thresholds",
    "feature_thresholds",
    *_METHOD_LISTS,
    *_NUMBERS,
    *_INTEGERS,
    *_WORDS,
}
_CALIBRATE_FIELDS = {"chunks", "chunk_rows", "quantile"}


class DriftSettingsError(ValueError):
    """A drift settings file or entry is invalid; the message names the entry and the field."""


@dataclass(frozen=True)
class ThresholdCalibration:
    """How thresholds are calibrated from the baseline (see :func:`calibrate_thresholds`)."""

    chunks: int = 20
    chunk_rows: int | None = None
    quantile: float = 0.95


@dataclass(frozen=True)
class ModelDrift:
    """The drift configuration of the models matching ``pattern``."""

    pattern: str = "*"
    config: DriftConfig = field(default_factory=DriftConfig)
    calibrate: ThresholdCalibration | None = None
    #: What the fields not written start from: ``DriftConfig()`` or ``DriftConfig.evidently()``.
    preset: str = "keelwatch"

    def written(self) -> dict[str, Any]:
        """The configuration's fields that differ from the preset's."""
        base = DriftConfig.evidently() if self.preset == "evidently" else DriftConfig()
        return {
            f.name: getattr(self.config, f.name)
            for f in fields(DriftConfig)
            if getattr(self.config, f.name) != getattr(base, f.name)
        }

    def resolve(self, store: Store, baseline: Baseline) -> DriftConfig:
        """The configuration for a run against ``baseline``: calibrated thresholds (if asked
        for, computed once per baseline and kept in the store) under the written ones."""
        if self.calibrate is None:
            return self.config
        methods = {
            "numeric": _distances(self.config.numeric_methods, "wasserstein"),
            "categorical": _distances(self.config.categorical_methods, "jensen_shannon"),
        }
        calibrated = as_feature_thresholds(
            stored_calibration(
                store,
                baseline,
                methods,
                chunks=self.calibrate.chunks,
                chunk_rows=self.calibrate.chunk_rows,
                quantile=self.calibrate.quantile,
            )
        )
        for feature, written in self.config.feature_thresholds.items():
            calibrated[feature] = {**calibrated.get(feature, {}), **written}
        return replace(self.config, feature_thresholds=calibrated)


def _distances(methods: tuple[str, ...], fallback: str) -> tuple[str, ...]:
    """The methods that get thresholds (not p-value tests); Evidently's rule decides with
    ``fallback`` on large samples when no method is listed."""
    chosen = tuple(m for m in methods if m not in P_VALUE_METHODS)
    return chosen or (fallback,)


@dataclass(frozen=True)
class DriftSettings:
    """Drift configurations by model pattern, first match first."""

    models: tuple[ModelDrift, ...] = ()

    def matching(self, model: str) -> ModelDrift | None:
        """The first entry whose pattern matches ``model``, if any."""
        for entry in self.models:
            if fnmatch.fnmatchcase(model, entry.pattern):
                return entry
        return None

    def for_model(self, model: str) -> ModelDrift:
        """What ``model`` runs with: its matching entry, else ``DriftConfig()``."""
        return self.matching(model) or ModelDrift()


def _number(where: str, value: Any, integer: bool = False) -> float | int:
    wrong = not isinstance(value, int) if integer else not isinstance(value, (int, float))
    if isinstance(value, bool) or wrong:
        kind = "an integer" if integer else "a number"
        raise DriftSettingsError(f"{where}: must be {kind}, got {value!r}")
    number: float | int = value
    return number


def _thresholds(where: str, value: Any) -> dict[str, float]:
    """Method → threshold (a distance's score, a test's alpha), each a positive number."""
    if not isinstance(value, dict):
        raise DriftSettingsError(f"{where}: must be a mapping of method to number")
    out = {}
    for method, threshold in value.items():
        if method not in METHODS:
            raise DriftSettingsError(f"{where}.{method}: unknown drift method")
        number = float(_number(f"{where}.{method}", threshold))
        if not 0.0 < number < float("inf"):
            raise DriftSettingsError(f"{where}.{method}: must be > 0, got {threshold!r}")
        if method in P_VALUE_METHODS and number >= 1.0:
            raise DriftSettingsError(f"{where}.{method}: an alpha must be < 1, got {threshold!r}")
        out[str(method)] = number
    return out


def _calibration(where: str, value: Any) -> ThresholdCalibration:
    if value is True:
        return ThresholdCalibration()
    if not isinstance(value, dict):
        raise DriftSettingsError(f"{where}: must be true or a mapping")
    check_entry(where, value, _CALIBRATE_FIELDS, DriftSettingsError)
    chunks = int(_number(f"{where}.chunks", value.get("chunks", 20), integer=True))
    rows = value.get("chunk_rows")
    quantile = float(_number(f"{where}.quantile", value.get("quantile", 0.95)))
    if chunks < 2:
        raise DriftSettingsError(f"{where}.chunks: must be >= 2, got {chunks}")
    if rows is not None and int(_number(f"{where}.chunk_rows", rows, integer=True)) < 1:
        raise DriftSettingsError(f"{where}.chunk_rows: must be >= 1, got {rows}")
    if not 0.0 < quantile < 1.0:
        raise DriftSettingsError(f"{where}.quantile: must be in (0, 1), got {quantile}")
    return ThresholdCalibration(chunks, rows, quantile)


def _entry(index: int, item: Any) -> ModelDrift:
    where = f"models[{index}]"
    check_entry(where, item, _FIELDS, DriftSettingsError)
    pattern = item.get("model")
    if not isinstance(pattern, str) or not pattern:
        raise DriftSettingsError(f"{where}.model: is required, a non-empty name or pattern")
    where = f"models[{index}] ({pattern})"
    preset = item.get("preset", "keelwatch")
    if preset not in PRESETS:
        raise DriftSettingsError(f"{where}.preset: must be one of {', '.join(PRESETS)}")
    options: dict[str, Any] = {}
    for key in _METHOD_LISTS:
        if key in item:
            value = item[key]
            if not isinstance(value, list) or not all(isinstance(m, str) for m in value):
                raise DriftSettingsError(f"{where}.{key}: must be a list of method names")
            options[key] = tuple(value)
    for key in (*_NUMBERS, *_INTEGERS):
        if key in item:
            options[key] = _number(f"{where}.{key}", item[key], integer=key in _INTEGERS)
    for key in _WORDS:
        if key in item:
            if not isinstance(item[key], str):
                raise DriftSettingsError(f"{where}.{key}: must be a string, got {item[key]!r}")
            options[key] = item[key]
    if "thresholds" in item:
        options["thresholds"] = _thresholds(f"{where}.thresholds", item["thresholds"])
    if "feature_thresholds" in item:
        per_feature = item["feature_thresholds"]
        if not isinstance(per_feature, dict):
            raise DriftSettingsError(f"{where}.feature_thresholds: must be a mapping of features")
        options["feature_thresholds"] = {
            str(f): _thresholds(f"{where}.feature_thresholds.{f}", v)
            for f, v in per_feature.items()
        }
    try:
        make = DriftConfig.evidently if preset == "evidently" else DriftConfig
        config = make(**options)
    except ValueError as exc:
        raise DriftSettingsError(f"{where}: {exc}") from exc
    calibrate = item.get("calibrate")
    if calibrate is None:
        return ModelDrift(pattern, config, preset=preset)
    return ModelDrift(pattern, config, _calibration(f"{where}.calibrate", calibrate), preset)


def parse_drift_settings(document: Mapping[str, Any] | None) -> DriftSettings:
    """Validate a parsed drift settings document (``{"models": [...]}``)."""
    if document is None:
        return DriftSettings()
    if not isinstance(document, dict) or not isinstance(document.get("models", []), list):
        raise DriftSettingsError("models: the document must be a mapping with a 'models' list")
    unknown = set(document) - {"models"}
    if unknown:
        raise DriftSettingsError(f"{sorted(unknown)[0]}: unknown field")
    return DriftSettings(tuple(_entry(i, e) for i, e in enumerate(document.get("models", []))))


def load_drift_settings(path: str | Path) -> DriftSettings:
    """Read and validate a YAML drift settings file."""
    return parse_drift_settings(read_yaml(path, "drift settings", DriftSettingsError))
