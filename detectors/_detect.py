"""Every detector over one window, in one call (what ``keelwatch detect`` and the scheduler run)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from keelwatch.store import Store, StoreError

from ._baseline import Baseline, get_baseline
from ._calibration import Calibration, calibration
from ._config import DriftConfig
from ._cost import Cost, cost
from ._drift import DriftRun, run_drift
from ._labelled import Labels, labels
from ._multivariate import DomainClassifierDrift, domain_classifier_drift
from ._operations import Operations, operations
from ._performance import Classification, Regression, classification, regression
from ._quality import Quality, quality
from ._reconstruction import ReconstructionDrift, reconstruction_drift
from ._sql import Segment, Window, segment_of
from ._windows import latest_count_window

__all__ = ["Detection", "DetectorFailure", "detect", "detect_window"]

_log = logging.getLogger(__name__)
_T = TypeVar("_T")


@dataclass(frozen=True)
class DetectorFailure:
    """A detector beside drift whose queries failed on the window, and the store's error."""

    detector: str
    error: str


@dataclass(frozen=True)
class Detection:
    """All detector results of one window; parts that do not apply are ``None`` or empty.

    ``drift`` and ``quality`` need a registered baseline; ``classification``, ``calibration``
    and ``regression`` need outcomes joined by ``prediction_id``; ``cost`` (per version and
    slot) counts predictions without an effective price as unpriced; ``labels`` says how many
    of the window's predictions have an outcome yet and how late outcomes arrive.
    """

    window: Window
    baseline_id: str | None
    drift: DriftRun | None
    quality: Quality | None
    operations: tuple[Operations, ...]
    classification: Classification | None
    calibration: Calibration | None
    regression: Regression | None
    multivariate: DomainClassifierDrift | None = None
    cost: tuple[Cost, ...] = ()
    reconstruction: ReconstructionDrift | None = None
    labels: Labels | None = None
    #: Detectors whose queries failed (their fields are ``None`` or empty); the others ran.
    failures: tuple[DetectorFailure, ...] = ()

    def outcome_metrics(self) -> Iterator[tuple[str, str, float | None]]:
        """(detector, metric, value) of the results against outcomes that apply: performance,
        calibration and label coverage (what the server publishes and stores for them)."""
        for detector, metrics in OUTCOME_METRICS.items():
            result = getattr(self, detector)
            if result is not None:
                for metric in metrics:
                    yield detector, metric, getattr(result, metric)


#: The numbers each result against outcomes offers, by ``Detection`` field.
OUTCOME_METRICS: dict[str, tuple[str, ...]] = {
    "classification": ("accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc"),
    "regression": ("rmse", "mae", "mape"),
    "calibration": ("ece", "mce", "brier", "log_loss"),
    "labels": ("coverage",),
}


def detect(
    store: Store,
    model: str,
    start: datetime,
    end: datetime,
    *,
    project: str = "default",
    version: str = "",
    slot: str = "",
    segment: Segment | Mapping[str, str] = (),
    count: int = 0,
    baseline_version: int | None = None,
    config: DriftConfig | None = None,
    positive: str = "1",
    calibration_bins: int = 10,
    calibration_strategy: str = "uniform",
    multivariate: bool = False,
) -> Detection:
    """Run drift, data quality, operations, performance, calibration and cost over a window.

    The window is ``[start, end)`` of ``model``, narrowed to ``version``, ``slot`` and the tag
    ``segment`` when given; with ``count`` it is the ``count`` most recent predictions of that
    range instead (``latest_count_window``).

    Args:
        segment: tag ``(key, value)`` pairs (or a mapping) that must all match.
        baseline_version: which baseline to compare with (default: the newest).
        positive: the positive class label of a binary classifier.
        multivariate: also the multivariate detectors, the domain classifier (a few seconds;
            scikit-learn) and the PCA reconstruction error (in SQL).
    """
    window = Window(model, start, end, project, version, slot, segment_of(segment))
    if count:
        window = latest_count_window(store, window, count)
    baseline = get_baseline(store, model, baseline_version, project)
    drift = run_drift(store, baseline, window, config) if baseline else None
    return detect_window(
        store,
        window,
        baseline,
        drift,
        positive=positive,
        calibration_bins=calibration_bins,
        calibration_strategy=calibration_strategy,
        multivariate=multivariate,
    )


def detect_window(
    store: Store,
    window: Window,
    baseline: Baseline | None,
    drift: DriftRun | None,
    *,
    positive: str = "1",
    calibration_bins: int = 10,
    calibration_strategy: str = "uniform",
    multivariate: bool = False,
) -> Detection:
    """Every detector beside drift over ``window``, with its drift run already made (the server
    runs drift first, stores it and checks the alert rules, then the rest).

    A large window's drift run brings data quality's per-key counts, so quality does not read
    the window's values again. A detector whose queries fail (a ``StoreError``: the engine's
    memory limit, a server timeout) is listed in ``failures`` and the others still run, so one
    failing detector does not hide the rest of the window's results.
    """
    values = drift.window_values if drift else None
    failures: list[DetectorFailure] = []

    def attempt(name: str, run: Callable[[], _T]) -> _T | None:
        try:
            return run()
        except StoreError as exc:
            _log.warning("detector %s failed on model %s: %s", name, window.model, exc)
            failures.append(DetectorFailure(name, str(exc)))
            return None

    found_quality = (
        attempt("quality", lambda: quality(store, baseline, window, values=values))
        if baseline
        else None
    )
    found_ops = attempt("operations", lambda: operations(store, window)) or ()
    found_classification = attempt(
        "classification", lambda: classification(store, window, positive)
    )
    found_calibration = attempt(
        "calibration",
        lambda: calibration(store, window, positive, calibration_bins, calibration_strategy),
    )
    found_regression = attempt("regression", lambda: regression(store, window))
    found_cost = attempt("cost", lambda: cost(store, window)) or ()
    found_labels = attempt("labels", lambda: labels(store, window))
    found_domain = found_reconstruction = None
    if baseline and multivariate:
        found_domain = attempt(
            "multivariate", lambda: domain_classifier_drift(store, baseline, window)
        )
        found_reconstruction = attempt(
            "reconstruction", lambda: reconstruction_drift(store, baseline, window)
        )
    return Detection(
        window=window,
        baseline_id=baseline.baseline_id if baseline else None,
        drift=drift,
        quality=found_quality,
        operations=found_ops,
        classification=found_classification,
        calibration=found_calibration,
        regression=found_regression,
        cost=found_cost,
        labels=found_labels,
        multivariate=found_domain,
        reconstruction=found_reconstruction,
        failures=tuple(failures),
    )
