"""The collector server (``keelwatch serve``): ingest API, detectors on a schedule, alerts."""

from __future__ import annotations

from ._app import create_app, run_to_json
from ._config import ServerConfig
from ._ingest import Batch, RecordError, parse_outcomes, parse_predictions
from ._service import DetectionOutcome, Monitoring, NoBaseline

__all__ = [
    "Batch",
    "DetectionOutcome",
    "Monitoring",
    "NoBaseline",
    "RecordError",
    "ServerConfig",
    "create_app",
    "parse_outcomes",
    "parse_predictions",
    "run_to_json",
    "serve",
]


def serve(config: ServerConfig) -> None:
    """Run the server in the foreground until interrupted."""
    import uvicorn

    uvicorn.run(create_app(config), host=config.host, port=config.port, log_level="warning")
