"""The server's Prometheus metrics, on a registry of its own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from keelwatch.detectors import Detection, DriftRun

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
        self.missing_rate = Gauge(
            "keelwatch_feature_missing_rate",
            "Share of the latest window's predictions without the feature (data quality).",
            ["model", "feature"],
            registry=self.registry,
        )
        self.out_of_range = Gauge(
            "keelwatch_feature_out_of_range_share",
            "Share of the latest window's numeric values outside the baseline's [min, max].",
            ["model", "feature"],
            registry=self.registry,
        )
        self.unseen = Gauge(
            "keelwatch_feature_unseen_share",
            "Share of the latest window's categorical values the baseline never saw.",
            ["model", "feature"],
            registry=self.registry,
        )
        self.latency = Gauge(
            "keelwatch_latency_ms",
            "Latency quantiles of the latest window, per version and slot.",
            ["model", "version", "slot", "quantile"],
            registry=self.registry,
        )
        self.failure_rate = Gauge(
            "keelwatch_failure_rate",
            "Share of the latest window's calls that failed, per version and slot.",
            ["model", "version", "slot"],
            registry=self.registry,
        )
        self.throughput = Gauge(
            "keelwatch_throughput_per_second",
            "Calls per second over the latest window, per version and slot.",
            ["model", "version", "slot"],
            registry=self.registry,
        )
        self.performance = Gauge(
            "keelwatch_performance",
            "Latest window's metrics against delayed outcomes (accuracy, roc_auc, rmse, ...), "
            "calibration (ece, brier, ...) and label coverage.",
            ["model", "metric"],
            registry=self.registry,
        )
        self.runs = Counter(
            "keelwatch_detector_runs",
            "Detector runs, by model and outcome.",
            ["model", "status"],
            registry=self.registry,
        )
        self.failures = Counter(
            "keelwatch_detector_failures",
            "Detectors beside drift whose queries failed on a window (the others still ran).",
            ["model", "detector"],
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

    def observe_detection(self, detection: Detection) -> None:
        """Publish the other detectors' results of one window (not drift: ``observe_run``)."""
        model = detection.window.model
        if detection.quality is not None:
            for f in detection.quality.features:
                self.missing_rate.labels(model, f.feature).set(f.missing_rate)
                if f.kind == "numeric":
                    self.out_of_range.labels(model, f.feature).set(f.out_of_range_share)
                else:
                    self.unseen.labels(model, f.feature).set(f.unseen_share)
        for ops in detection.operations:
            labels = (model, ops.version, ops.slot)
            quantiles = {
                "0.5": ops.latency_p50_ms,
                "0.95": ops.latency_p95_ms,
                "0.99": ops.latency_p99_ms,
            }
            for quantile, value in quantiles.items():
                self.latency.labels(*labels, quantile).set(value)
            self.failure_rate.labels(*labels).set(ops.failure_rate)
            self.throughput.labels(*labels).set(ops.throughput_per_s)
        for detector, metric, found in detection.outcome_metrics():
            name = "label_coverage" if detector == "labels" else metric
            if found is not None:
                self.performance.labels(model, name).set(found)
