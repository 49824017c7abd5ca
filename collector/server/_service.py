"""What the server does beside ingest: run detectors on windows, fire alert rules, on a schedule."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from keelwatch.alerts import Alert, WebhookSender, evaluate_rules
from keelwatch.detectors import DriftRun, Window, get_baseline, run_drift, store_run
from keelwatch.store import Store

from ._config import ServerConfig
from ._metrics import ServerMetrics

__all__ = ["DetectionOutcome", "Monitoring", "NoBaseline"]

_log = logging.getLogger("keelwatch.server")


class NoBaseline(LookupError):
    """The model has no registered baseline."""


@dataclass(frozen=True)
class DetectionOutcome:
    """A detector run and the alerts it fired."""

    run: DriftRun
    alerts: tuple[Alert, ...]


class Monitoring:
    """Runs drift detection and alert rules against the store; one run at a time."""

    def __init__(self, store: Store, config: ServerConfig, metrics: ServerMetrics) -> None:
        self.store = store
        self.config = config
        self.metrics = metrics
        self.sender = WebhookSender(config.webhook_secret)
        self._run_lock = threading.Lock()

    def detect(
        self, model: str, start: datetime, end: datetime, version: str = "", slot: str = ""
    ) -> DetectionOutcome:
        """Drift of ``model``'s predictions in ``[start, end)`` against its newest baseline."""
        baseline = get_baseline(self.store, model, project=self.config.project)
        if baseline is None:
            raise NoBaseline(f"model {model!r} has no baseline; register one first")
        window = Window(model, start, end, self.config.project, version, slot)
        with self._run_lock:
            try:
                run = run_drift(self.store, baseline, window)
                store_run(self.store, run)
            except Exception:
                self.metrics.runs.labels(model, "error").inc()
                raise
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
