"""keelwatch: observability and drift monitoring for ML and LLM models in production.

The model-service side is this package's top level::

    from keelwatch import monitor

    @monitor(model="churn", version="2024-06-01")
    def predict(features: dict) -> float: ...

The server, store, detectors, alerts and dashboards live in ``keelwatch.collector.server``,
``keelwatch.store``, ``keelwatch.detectors``, ``keelwatch.alerts`` and ``keelwatch.dashboards``
(installed with the ``server`` and ``dashboards`` extras).
"""

from keelwatch.collector import (
    Client,
    configure,
    current_prediction_id,
    flush,
    instrument_estimator,
    log_outcome,
    monitor,
    shutdown,
)

__all__ = [
    "Client",
    "configure",
    "current_prediction_id",
    "flush",
    "instrument_estimator",
    "log_outcome",
    "monitor",
    "shutdown",
]
__version__ = "0.1.0"
