"""The collector server (``keelwatch serve``): ingest API, detectors on a schedule, alerts."""

from __future__ import annotations

from ._app import create_app
from ._config import ServerConfig
from ._ingest import Batch, RecordError, parse_outcomes, parse_predictions
from ._keys import ApiKey, KeyRing, NewKey
from ._keys_cli import keys_main
from ._routes_detect import run_to_json
from ._service import DetectionOutcome, Monitoring, NoBaseline

__all__ = [
    "ApiKey",
    "Batch",
    "DetectionOutcome",
    "KeyRing",
    "Monitoring",
    "NewKey",
    "NoBaseline",
    "RecordError",
    "ServerConfig",
    "create_app",
    "keys_main",
    "parse_outcomes",
    "parse_predictions",
    "run_to_json",
    "serve",
]


def serve(config: ServerConfig) -> None:
    """Run the server in the foreground until interrupted."""
    import uvicorn

    uvicorn.run(create_app(config), host=config.host, port=config.port, log_level="warning")
