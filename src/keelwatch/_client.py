"""A small HTTP client for the CLI and the demo to talk to ``keelwatch serve``."""

from __future__ import annotations

import contextlib
import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlencode

from keelwatch.environ import KEELWATCH_API_KEY, KEELWATCH_ENDPOINT, env_str

__all__ = ["DEFAULT_ENDPOINT", "ServerClient", "ServerError"]

DEFAULT_ENDPOINT = "http://127.0.0.1:8787"


class ServerError(Exception):
    """The server refused a request or could not be reached; ``status`` 0 means no answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}" if status else message)
        self.status = status


class ServerClient:
    """JSON calls to the server's ``/v1`` API."""

    def __init__(
        self, url: str | None = None, api_key: str | None = None, timeout_s: float = 120.0
    ) -> None:
        self.url = (url or env_str(KEELWATCH_ENDPOINT, DEFAULT_ENDPOINT)).rstrip("/")
        self.api_key = api_key if api_key is not None else env_str(KEELWATCH_API_KEY, "")
        self.timeout_s = timeout_s

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        params: dict[str, Any] | None = None,
        content_type: str = "application/json",
        timeout_s: float | None = None,
    ) -> Any:
        url = self.url + path + ("?" + urlencode(params) if params else "")
        headers = {"content-type": content_type}
        if self.api_key:
            headers["authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(url, data=body, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=timeout_s or self.timeout_s) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")
            with contextlib.suppress(ValueError, AttributeError):
                detail = json.loads(detail).get("detail", detail)
            raise ServerError(exc.code, str(detail)) from exc
        except OSError as exc:
            raise ServerError(0, f"cannot reach keelwatch server at {self.url}: {exc}") from exc

    def healthy(self) -> bool:
        try:
            return bool(self.request("GET", "/healthz"))
        except ServerError:
            return False

    def add_baseline(self, model: str, data: bytes, fmt: str, created_by: str = "") -> Any:
        return self.request(
            "POST",
            "/v1/baselines",
            data,
            {"model": model, "format": fmt, "created_by": created_by},
            content_type="application/octet-stream",
        )

    def baselines(self, model: str = "") -> Any:
        return self.request("GET", "/v1/baselines", params={"model": model} if model else None)

    def detect(
        self,
        model: str,
        start: str | None,
        end: str,
        version: str = "",
        slot: str = "",
        *,
        segment: dict[str, str] | None = None,
        by_tag: str = "",
        max_values: int | None = None,
        every: str | float | None = None,
        count: int = 0,
        backfill: bool = False,
        replace: bool = False,
    ) -> Any:
        """``POST /v1/detect``; unset options are left out (the server's defaults apply).

        A backfill may run for many windows, so it waits up to an hour for the answer.
        """
        spec: dict[str, Any] = {"model": model, "end": end, "version": version, "slot": slot}
        optional: dict[str, Any] = {
            "start": start,
            "segment": segment or None,
            "by_tag": by_tag or None,
            "max_values": max_values,
            "every": every,
            "count": count or None,
            "backfill": backfill or None,
            "replace": replace or None,
        }
        spec.update({k: v for k, v in optional.items() if v is not None})
        body = json.dumps(spec).encode()
        timeout = max(self.timeout_s, 3600.0) if backfill else None
        return self.request("POST", "/v1/detect", body, timeout_s=timeout)
