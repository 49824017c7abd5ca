"""The server's Prometheus metrics, on a registry of its own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from keelwatch.detectors import DriftRun

__all__ = ["ServerMetrics"]


class ServerMetrics:
    """Ingest counters and the latest detector results as gauges."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.records = Counter(
            "keelwatch_ingested_records",
            "Records stored, by kind.",
            ["kind"],
            registry=self.registry,
        )
        self.rejected = Counter(
            "keelwatch_rejected_records",
            "Records refused by validation, by kind.",
            ["kind"],
            registry=self.registry,
        )
        self.spooled_bytes = Gauge(
            "keelwatch_spooled_bytes",
            "Bytes of accepted batches waiting on disk for the store.",
            registry=self.registry,
        )
        self.drift_score = Gauge(
            "keelwatch_drift_score",
            "Latest drift score per model, feature and method.",
            ["model", "feature", "method"],
            registry=self.registry,
        )
        self.drifted = Gauge(
            "keelwatch_feature_drifted",
            "1 when the feature drifted in the latest run.",
            ["model", "feature"],
            registry=self.registry,
        )
        self.drift_share = Gauge(
            "keelwatch_drift_share",
            "Share of features drifted in the latest run.",
            ["model"],
            registry=self.registry,
        )
        self.runs = Counter(
            "keelwatch_detector_runs",
            "Detector runs, by model and outcome.",
            ["model", "status"],
            registry=self.registry,
        )
        self.alerts = Counter(
            "keelwatch_alerts",
            "Alerts fired, by model, rule and delivery.",
            ["model", "rule", "delivered"],
            registry=self.registry,
        )

    def observe_run(self, run: DriftRun) -> None:
        """Publish a drift run's results."""
        for result in run.results:
            self.drift_score.labels(run.model, result.feature, result.method).set(result.score)
            if result.deciding:
                self.drifted.labels(run.model, result.feature).set(int(result.drifted))
        self.drift_share.labels(run.model).set(run.drift_share)
