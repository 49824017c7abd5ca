"""Every detector over one window, in one call (what ``keelwatch detect`` and the scheduler run)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from keelwatch.store import Store

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

__all__ = ["Detection", "detect", "detect_window"]


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
    the window's values again.
    """
    values = drift.window_values if drift else None
    return Detection(
        window=window,
        baseline_id=baseline.baseline_id if baseline else None,
        drift=drift,
        quality=quality(store, baseline, window, values=values) if baseline else None,
        operations=operations(store, window),
        classification=classification(store, window, positive),
        calibration=calibration(store, window, positive, calibration_bins, calibration_strategy),
        regression=regression(store, window),
        cost=cost(store, window),
        labels=labels(store, window),
        multivariate=(
            domain_classifier_drift(store, baseline, window) if baseline and multivariate else None
        ),
        reconstruction=(
            reconstruction_drift(store, baseline, window) if baseline and multivariate else None
        ),
    )
