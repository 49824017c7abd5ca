"""Every environment variable keelwatch reads, in one place.

Precedence everywhere: an explicit argument, then the environment variable, then the default.
A malformed value is logged once and the default is used.
"""

from __future__ import annotations

import logging
import os

__all__ = [
    "KEELWATCH_API_KEY",
    "KEELWATCH_BATCH_SIZE",
    "KEELWATCH_CLICKHOUSE_URL",
    "KEELWATCH_DATA",
    "KEELWATCH_DETECT_INTERVAL",
    "KEELWATCH_DISABLED",
    "KEELWATCH_ENDPOINT",
    "KEELWATCH_FLUSH_INTERVAL",
    "KEELWATCH_HOST",
    "KEELWATCH_MAX_IN_FLIGHT",
    "KEELWATCH_PORT",
    "KEELWATCH_QUEUE_SIZE",
    "KEELWATCH_RETENTION_DAYS",
    "KEELWATCH_SAMPLE_RATE",
    "KEELWATCH_SEND_TIMEOUT",
    "KEELWATCH_SERVER_SPOOL_DIR",
    "KEELWATCH_SPOOL_DIR",
    "KEELWATCH_WEBHOOK_SECRET",
    "env_float",
    "env_int",
    "env_str",
]

_log = logging.getLogger("keelwatch")

#: Base URL of the collector server the SDK ships records to (default ``http://127.0.0.1:8787``).
KEELWATCH_ENDPOINT = "KEELWATCH_ENDPOINT"
#: API key sent by the SDK and the CLI as ``Authorization: Bearer <key>``.
KEELWATCH_API_KEY = "KEELWATCH_API_KEY"
#: Data directory of the embedded ClickHouse (chDB) store owned by ``keelwatch serve``.
KEELWATCH_DATA = "KEELWATCH_DATA"
#: URL of a ClickHouse server used instead of the embedded store, e.g. ``http://user:pw@host:8123``.
KEELWATCH_CLICKHOUSE_URL = "KEELWATCH_CLICKHOUSE_URL"
#: Address ``keelwatch serve`` binds to (default ``127.0.0.1``).
KEELWATCH_HOST = "KEELWATCH_HOST"
#: Port ``keelwatch serve`` listens on (default ``8787``).
KEELWATCH_PORT = "KEELWATCH_PORT"
#: Seconds between scheduled detector runs inside the server (default ``300``; ``0`` disables).
KEELWATCH_DETECT_INTERVAL = "KEELWATCH_DETECT_INTERVAL"
#: Secret that signs outgoing retrain/rollback webhooks (Standard Webhooks, HMAC-SHA256).
KEELWATCH_WEBHOOK_SECRET = "KEELWATCH_WEBHOOK_SECRET"
#: Days the server keeps raw predictions, outcomes and spans (default ``90``; ``0``: forever).
KEELWATCH_RETENTION_DAYS = "KEELWATCH_RETENTION_DAYS"
#: Where the server spools accepted batches while the store is down (default: inside the
#: embedded store's directory, or ``./keelwatch-spool`` with a ClickHouse server).
KEELWATCH_SERVER_SPOOL_DIR = "KEELWATCH_SERVER_SPOOL_DIR"

#: SDK: records per HTTP request (default ``4096``).
KEELWATCH_BATCH_SIZE = "KEELWATCH_BATCH_SIZE"
#: SDK: seconds between sends of a partly filled batch (default ``1.0``).
KEELWATCH_FLUSH_INTERVAL = "KEELWATCH_FLUSH_INTERVAL"
#: SDK: calls held in memory before new ones are dropped and counted (default ``50000``).
KEELWATCH_QUEUE_SIZE = "KEELWATCH_QUEUE_SIZE"
#: SDK: directory of the on-disk spool (at-least-once delivery across restarts); unset: no spool.
KEELWATCH_SPOOL_DIR = "KEELWATCH_SPOOL_DIR"
#: SDK: fraction of predictions shipped, chosen by a hash of the prediction id (default ``1.0``).
KEELWATCH_SAMPLE_RATE = "KEELWATCH_SAMPLE_RATE"
#: SDK: ``1``/``true``/``yes`` turns ``@monitor`` into a plain call and ships nothing.
KEELWATCH_DISABLED = "KEELWATCH_DISABLED"
#: SDK: seconds before an HTTP request to the collector is abandoned and retried (default ``10``).
KEELWATCH_SEND_TIMEOUT = "KEELWATCH_SEND_TIMEOUT"
#: SDK: requests to the collector in flight at once, each with its own connection (default
#: ``2``, at most ``16``): the collector merges concurrent batches into one insert.
KEELWATCH_MAX_IN_FLIGHT = "KEELWATCH_MAX_IN_FLIGHT"


def env_str(name: str, default: str) -> str:
    """The variable's value, or ``default`` when unset or empty."""
    value = os.environ.get(name, "").strip()
    return value or default


def env_int(name: str, default: int, minimum: int | None = None) -> int:
    """The variable as an int; a malformed or out-of-range value logs and yields ``default``."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        _log.warning("%s=%r is not an integer; using %r", name, raw, default)
        return default
    if minimum is not None and value < minimum:
        _log.warning("%s=%r is below %r; using %r", name, raw, minimum, default)
        return default
    return value


def env_float(name: str, default: float, minimum: float | None = None) -> float:
    """The variable as a float; a malformed or out-of-range value logs and yields ``default``."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        _log.warning("%s=%r is not a number; using %r", name, raw, default)
        return default
    if value != value or (minimum is not None and value < minimum):
        _log.warning("%s=%r is out of range; using %r", name, raw, default)
        return default
    return value
