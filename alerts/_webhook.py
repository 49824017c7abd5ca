"""Signed outgoing webhooks (Standard Webhooks): retraining and rollback requests.

The signature is ``v1,<base64(HMAC-SHA256(secret, f"{id}.{timestamp}.{body}"))>`` in the
``webhook-signature`` header, beside ``webhook-id`` (the idempotency key) and
``webhook-timestamp`` (UNIX seconds). A secret written ``whsec_<base64>`` is base64-decoded first.
Delivery retries 5xx, 429 and network errors with exponential backoff; other 4xx are final.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Delivery", "WebhookSender", "sign", "verify"]

TOLERANCE_S = 300


def _key(secret: str) -> bytes:
    if secret.startswith("whsec_"):
        return base64.b64decode(secret[len("whsec_") :])
    return secret.encode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value for a message."""
    digest = hmac.new(
        _key(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256
    ).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(secret: str, headers: Mapping[str, str], body: bytes, now: float | None = None) -> bool:
    """Check a received webhook's signature and timestamp (what a receiver does)."""
    lower = {k.lower(): v for k, v in headers.items()}
    try:
        msg_id = lower["webhook-id"]
        timestamp = int(lower["webhook-timestamp"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > TOLERANCE_S:
        return False
    expected = sign(secret, msg_id, timestamp, body)
    return any(hmac.compare_digest(expected, s) for s in lower.get("webhook-signature", "").split())


@dataclass(frozen=True)
class Delivery:
    """The outcome of sending one webhook."""

    msg_id: str
    url: str
    status: int  # HTTP status, or 0 when no answer came
    attempts: int
    delivered: bool
    error: str = ""


class WebhookSender:
    """Posts signed JSON events; ``sleep`` and ``now`` are injectable for tests."""

    def __init__(
        self,
        secret: str,
        *,
        attempts: int = 4,
        backoff_s: float = 0.5,
        timeout_s: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], float] = time.time,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be >= 1")
        self._secret = secret
        self._attempts = attempts
        self._backoff = backoff_s
        self._timeout = timeout_s
        self._sleep = sleep
        self._now = now

    def send(self, url: str, event_type: str, data: Mapping[str, Any]) -> Delivery:
        """Post ``{"type", "timestamp", "data"}`` to ``url``; never raises."""
        msg_id = "msg_" + uuid.uuid4().hex
        timestamp = int(self._now())
        body = json.dumps(
            {"type": event_type, "timestamp": timestamp, "data": data}, default=str
        ).encode()
        headers = {
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(self._secret, msg_id, timestamp, body),
        }
        status, error = 0, ""
        for attempt in range(1, self._attempts + 1):
            request = urllib.request.Request(url, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self._timeout) as response:
                    status = response.status
            except urllib.error.HTTPError as exc:
                status, error = exc.code, f"HTTP {exc.code}"
            except (OSError, ValueError) as exc:
                status, error = 0, str(exc) or type(exc).__name__
            if 200 <= status < 300:
                return Delivery(msg_id, url, status, attempt, True)
            if 400 <= status < 500 and status != 429:
                break
            if attempt < self._attempts:
                self._sleep(self._backoff * 2 ** (attempt - 1))
        return Delivery(msg_id, url, status, attempt, False, error)
