"""keelwatch SDK: record a model's predictions from inside the service that runs it.

::

    from keelwatch.collector import configure, monitor, log_outcome, current_prediction_id

    configure(endpoint="http://keelwatch:8787", api_key="...")

    @monitor(model="churn", version="2024-06-01")
    def predict(features: dict) -> float:
        ...

Records are shipped by a background thread to ``POST /v1/predictions`` (see docs/ingest-api.md);
the decorated function never waits for the network and never sees an SDK error. No dependencies
beyond the standard library; NumPy, pandas, OpenTelemetry and prometheus_client are used when the
application has them. See docs/sdk.md.
"""

from ._client import Client, Stats
from ._context import current_prediction_id
from ._decorator import monitor
from ._errors import CollectorError, ConfigError, TransportError
from ._global import configure, flush, log_outcome, shutdown
from ._sklearn import InstrumentedEstimator, instrument_estimator
from ._transport import HttpTransport, InMemoryTransport, SendResult, Transport

__all__ = [
    "Client",
    "CollectorError",
    "ConfigError",
    "HttpTransport",
    "InMemoryTransport",
    "InstrumentedEstimator",
    "SendResult",
    "Stats",
    "Transport",
    "TransportError",
    "configure",
    "current_prediction_id",
    "flush",
    "instrument_estimator",
    "log_outcome",
    "monitor",
    "shutdown",
]
