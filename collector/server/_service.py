"""What the server does beside ingest: run detectors on windows, fire alert rules, on a schedule."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone

from keelwatch.alerts import Alert, WebhookSender, evaluate_rules
from keelwatch.detectors import (
    MAX_SEGMENT_VALUES,
    Backfill,
    Baseline,
    Detection,
    DriftConfig,
    DriftRun,
    DriftSettingsError,
    Window,
    backfill,
    detect_window,
    get_baseline,
    latest_count_window,
    run_drift,
    segment_windows,
    store_detection,
    store_run,
)
from keelwatch.detectors._sql import Segment
from keelwatch.store import Store, StoreError

from ._config import ServerConfig
from ._metrics import ServerMetrics

__all__ = ["DetectionOutcome", "Monitoring", "NoBaseline"]

_log = logging.getLogger("keelwatch.server")


class NoBaseline(LookupError):
    """The model has no registered baseline."""


@dataclass(frozen=True)
class DetectionOutcome:
    """A drift run, the alerts it fired and, for one window, every other detector's results."""

    run: DriftRun
    alerts: tuple[Alert, ...]
    detection: Detection | None = None


class Monitoring:
    """Runs drift detection and alert rules against the store; one run at a time."""

    def __init__(self, store: Store, config: ServerConfig, metrics: ServerMetrics) -> None:
        self.store = store
        self.config = config
        self.metrics = metrics
        self.sender = WebhookSender(config.webhook_secret)
        self._run_lock = threading.Lock()
        #: Each model's drift configuration per baseline, calibrated thresholds included
        #: (computed once per baseline: a baseline never changes).
        self._drift_configs: dict[str, DriftConfig] = {}

    def _baseline(self, model: str) -> Baseline:
        baseline = get_baseline(self.store, model, project=self.config.project)
        if baseline is None:
            raise NoBaseline(f"model {model!r} has no baseline; register one first")
        return baseline

    def drift_config(self, baseline: Baseline) -> DriftConfig:
        """The drift configuration of ``baseline``'s model (``ServerConfig.drift``)."""
        found = self._drift_configs.get(baseline.baseline_id)
        if found is None:
            entry = self.config.drift.for_model(baseline.model)
            try:
                found = entry.resolve(self.store, baseline)
            except ValueError as exc:
                raise DriftSettingsError(
                    f"drift settings of model {baseline.model!r} ({entry.pattern}): "
                    f"calibrating thresholds: {exc}"
                ) from exc
            self._drift_configs[baseline.baseline_id] = found
        return found

    def detect(
        self,
        model: str,
        start: datetime,
        end: datetime,
        version: str = "",
        slot: str = "",
        segment: Segment = (),
        count: int = 0,
    ) -> DetectionOutcome:
        """Drift of ``model``'s predictions in ``[start, end)`` against its newest baseline
        (stored, published, checked against the alert rules), then every other detector over
        the same window: data quality, operations, performance, calibration, cost, labels.

        ``segment`` keeps only predictions with those tag values; ``count`` looks at the
        ``count`` most recent predictions of the range instead of all of them.
        """
        baseline = self._baseline(model)
        window = Window(model, start, end, self.config.project, version, slot, segment)
        with self._run_lock:
            if count:
                window = latest_count_window(self.store, window, count)
            return self._run_all(baseline, window)

    def detect_by_tag(
        self,
        model: str,
        start: datetime,
        end: datetime,
        key: str,
        version: str = "",
        slot: str = "",
        segment: Segment = (),
        count: int = 0,
        max_values: int = MAX_SEGMENT_VALUES,
    ) -> list[DetectionOutcome]:
        """One detection (drift and the other detectors) per value of tag ``key`` in the window
        (at most ``max_values``), each stored under its segment."""
        baseline = self._baseline(model)
        whole = Window(model, start, end, self.config.project, version, slot, segment)
        with self._run_lock:
            windows = segment_windows(self.store, whole, key, max_values)
            if count:
                windows = [latest_count_window(self.store, w, count) for w in windows]
            return [self._run_all(baseline, w) for w in windows]

    def backfill(
        self,
        model: str,
        start: datetime,
        end: datetime,
        *,
        every: timedelta | None = None,
        count: int | None = None,
        version: str = "",
        slot: str = "",
        segment: Segment = (),
        by_tag: str = "",
        max_values: int = MAX_SEGMENT_VALUES,
        replace: bool = False,
    ) -> Backfill:
        """Drift and the other detectors over each consecutive window of ``[start, end)``,
        stored; no alerts, no gauges.

        History must not page anyone or overwrite the latest gauges; its results land in
        ``drift_results`` and ``detector_results`` under deterministic run ids, so a repeated
        backfill stores nothing twice.
        """
        baseline = self._baseline(model)
        with self._run_lock:
            done = backfill(
                self.store,
                model,
                start,
                end,
                every=every,
                count=count,
                project=self.config.project,
                version=version,
                slot=slot,
                segment=segment,
                by_tag=by_tag,
                max_values=max_values,
                config=self.drift_config(baseline),
                replace_stored=replace,
            )
        for _ in done.runs:
            self.metrics.runs.labels(model, "backfill").inc()
        for detection in done.detections:
            for failure in detection.failures:
                self.metrics.failures.labels(model, failure.detector).inc()
        return done

    def _run_all(self, baseline: Baseline, window: Window) -> DetectionOutcome:
        """Drift (``_run``), then every other detector over the same window, stored under the
        drift run's id and published (under lock)."""
        outcome = self._run(baseline, window)
        detection = detect_window(self.store, window, baseline, outcome.run)
        try:
            store_detection(self.store, outcome.run.run_id, detection)
        except StoreError as exc:  # the results are still returned and published
            _log.warning("storing detector results of %s failed: %s", window.model, exc)
        for failure in detection.failures:
            self.metrics.failures.labels(window.model, failure.detector).inc()
        if not window.segment:
            self.metrics.observe_detection(detection)
        return replace(outcome, detection=detection)

    def _run(self, baseline: Baseline, window: Window) -> DetectionOutcome:
        """One drift run, stored, published and checked against the alert rules (under lock)."""
        model = window.model
        try:
            run = run_drift(self.store, baseline, window, self.drift_config(baseline))
            store_run(self.store, run)
        except Exception:
            self.metrics.runs.labels(model, "error").inc()
            raise
        if not window.segment:
            # The gauges are per model and feature: one segment's run is not the model's state.
            self.metrics.observe_run(run)
        self.metrics.runs.labels(model, "ok").inc()  # last: marks the run's gauges complete
        alerts = evaluate_rules(self.store, run, self.config.rules, self.sender)
        for alert in alerts:
            self.metrics.alerts.labels(
                model, alert.rule, str(alert.delivery.delivered).lower()
            ).inc()
        return DetectionOutcome(run, tuple(alerts))

    def scheduled(self) -> None:
        """The scheduler's job: every model with a baseline, over the trailing window."""
        end = datetime.now(timezone.utc)
        start = end - timedelta(seconds=self.config.detect_window_s)
        models = (
            self.store.query(
                "SELECT DISTINCT model FROM baselines WHERE project = {p:String}",
                {"p": self.config.project},
            )
            .column("model")
            .to_pylist()
        )
        for model in models:
            try:
                self.detect(model, start, end)
            except Exception:
                _log.exception("scheduled detection failed for model %s", model)
