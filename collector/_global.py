"""The process-wide default client behind ``monitor``, ``log_outcome``, ``flush``, ``shutdown``.

It is created on first use from the environment, or by ``configure``; never at import.
"""

from __future__ import annotations

import threading
from typing import Any

from ._client import Client
from ._config import DEFAULT_ENDPOINT
from ._log import logger

_lock = threading.Lock()
_client: Client | None = None


def default_client() -> Client:
    """The default client, created from the environment on first use."""
    client = _client
    if client is None:
        client = _create()
    return client


def _create() -> Client:
    global _client
    with _lock:
        if _client is None:
            try:
                _client = Client()
            except Exception as exc:  # first use is inside a user's call: never raise there
                logger.warning("keelwatch disabled: cannot build a client: %s", exc)
                _client = Client(endpoint=DEFAULT_ENDPOINT, disabled=True)
        return _client


def configure(endpoint: str | None = None, api_key: str | None = None, **options: Any) -> Client:
    """Replace the default client with one built from these options (see ``Client``).

    The previous default client sends what it holds and stops. Invalid options raise
    ``ValueError`` (``ConfigError``) and leave the current client in place.
    """
    global _client
    new = Client(endpoint, api_key, **options)
    with _lock:
        old, _client = _client, new
    if old is not None:
        old.shutdown()
    return new


def log_outcome(
    prediction_id: str,
    label: Any = None,
    value: Any = None,
    *,
    model: str | None = None,
    ts: float | None = None,
) -> None:
    """Record the true label or business value of an earlier prediction (never raises)."""
    default_client().log_outcome(prediction_id, label, value, model=model, ts=ts)


def flush(timeout: float | None = 5.0) -> bool:
    """Send what the default client holds; True when all of it was acknowledged in time."""
    client = _client
    return True if client is None else client.flush(timeout)


def shutdown(timeout: float | None = None) -> None:
    """Flush and stop the default client (the next call creates a new one from the environment)."""
    global _client
    with _lock:
        client, _client = _client, None
    if client is not None:
        client.shutdown(timeout)


def _reset() -> None:
    """Drop the default client without sending (tests)."""
    global _client
    with _lock:
        client, _client = _client, None
    if client is not None:
        client.shutdown(timeout=0.5)
