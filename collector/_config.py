"""Client settings: argument, then environment variable, then default; validated once."""

from __future__ import annotations

import dataclasses
import importlib.util
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from keelwatch import environ

from ._errors import ConfigError
from ._log import logger

DEFAULT_ENDPOINT = "http://127.0.0.1:8787"
#: ``auto``: Arrow IPC once the service has imported pyarrow, else gzip JSON.
WIRE_FORMATS = ("auto", "arrow", "json")
#: Each request in flight holds a batch and a connection; more than this gains nothing.
MAX_IN_FLIGHT = 16

#: A masking callable: gets the wire record (a dict) and returns it changed, or None to drop it.
MaskFunc = Callable[[dict[str, Any]], "dict[str, Any] | None"]


@dataclasses.dataclass(frozen=True)
class Config:
    """Resolved, validated settings of one ``Client`` (see ``Client`` for the meaning of each)."""

    endpoint: str = DEFAULT_ENDPOINT
    api_key: str | None = None
    batch_size: int = 4096  # the collector pays 20-40 ms per insert: amortise it
    flush_interval: float = 1.0
    max_queue_size: int = 50_000
    timeout: float = 10.0
    max_retries: int = 5
    max_backoff: float = 30.0
    spool_dir: str | None = None
    max_spool_bytes: int = 256 * 1024 * 1024
    sample_rate: float = 1.0
    disabled: bool = False
    max_record_bytes: int = 64 * 1024
    allow: frozenset[str] | None = None
    deny: frozenset[str] = frozenset()
    mask: MaskFunc | None = None
    default_model: str | None = None
    shutdown_timeout: float = 5.0
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)
    max_in_flight: int = 2
    wire_format: str = "auto"

    def __post_init__(self) -> None:
        parts = urlsplit(self.endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError("endpoint", self.endpoint, "must be an http(s) URL with a host")
        _positive("batch_size", self.batch_size, integer=True)
        _positive("max_queue_size", self.max_queue_size, integer=True)
        _positive("max_record_bytes", self.max_record_bytes, integer=True)
        _positive("max_spool_bytes", self.max_spool_bytes, integer=True)
        _positive("flush_interval", self.flush_interval)
        _positive("timeout", self.timeout)
        _positive("max_backoff", self.max_backoff)
        _positive("shutdown_timeout", self.shutdown_timeout, allow_zero=True)
        _positive("max_retries", self.max_retries, integer=True, allow_zero=True)
        _positive("max_in_flight", self.max_in_flight, integer=True)
        if self.max_in_flight > MAX_IN_FLIGHT:
            raise ConfigError("max_in_flight", self.max_in_flight, f"must be <= {MAX_IN_FLIGHT}")
        if self.wire_format not in WIRE_FORMATS:
            raise ConfigError("wire_format", self.wire_format, f"must be one of {WIRE_FORMATS}")
        if self.wire_format == "arrow" and importlib.util.find_spec("pyarrow") is None:
            raise ConfigError("wire_format", "arrow", "needs pyarrow installed")
        check_sample_rate(self.sample_rate)
        if self.mask is not None and not callable(self.mask):
            raise ConfigError("mask", self.mask, "must be callable")


def check_sample_rate(value: object, field: str = "sample_rate") -> float:
    """``value`` as a float in [0, 1], else ``ConfigError``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ConfigError(field, value, "must be a number between 0 and 1")
    return float(value)


def names(field: str, value: Iterable[str] | None) -> frozenset[str] | None:
    """A set of field names from a list of strings (``None`` stays ``None``)."""
    if value is None:
        return None
    if isinstance(value, str):
        raise ConfigError(field, value, "must be a list of names, not one string")
    out = frozenset(value)
    if not all(isinstance(n, str) for n in out):
        raise ConfigError(field, value, "must contain only strings")
    return out


def _positive(
    field: str, value: object, *, integer: bool = False, allow_zero: bool = False
) -> None:
    kinds: tuple[type, ...] = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise ConfigError(field, value, "must be an integer" if integer else "must be a number")
    if value != value or value < 0 or (value == 0 and not allow_zero):  # type: ignore[operator]
        raise ConfigError(field, value, "must be >= 0" if allow_zero else "must be > 0")


def _env_bool(name: str) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    logger.warning("%s=%r is not a boolean; using false", name, raw)
    return False


def _env_rate() -> float:
    rate = environ.env_float(environ.KEELWATCH_SAMPLE_RATE, 1.0, minimum=0.0)
    if rate > 1.0:
        logger.warning("%s=%r is above 1; using 1.0", environ.KEELWATCH_SAMPLE_RATE, rate)
        return 1.0
    return rate


def resolve(**given: Any) -> Config:
    """A ``Config`` from explicit arguments (``None`` = not given), the environment and defaults."""
    unknown = set(given) - {f.name for f in dataclasses.fields(Config)}
    if unknown:
        raise ConfigError(sorted(unknown)[0], given[sorted(unknown)[0]], "unknown option")
    env: dict[str, Any] = {
        "endpoint": _env_endpoint,
        "api_key": lambda: environ.env_str(environ.KEELWATCH_API_KEY, "") or None,
        "batch_size": lambda: environ.env_int(environ.KEELWATCH_BATCH_SIZE, 4096, minimum=1),
        "flush_interval": lambda: _env_positive_float(environ.KEELWATCH_FLUSH_INTERVAL, 1.0),
        "max_queue_size": lambda: environ.env_int(environ.KEELWATCH_QUEUE_SIZE, 50_000, minimum=1),
        "timeout": lambda: _env_positive_float(environ.KEELWATCH_SEND_TIMEOUT, 10.0),
        "spool_dir": lambda: environ.env_str(environ.KEELWATCH_SPOOL_DIR, "") or None,
        "sample_rate": _env_rate,
        "disabled": lambda: _env_bool(environ.KEELWATCH_DISABLED),
        "max_in_flight": _env_in_flight,
    }
    values: dict[str, Any] = {}
    for spec in dataclasses.fields(Config):
        value = given.get(spec.name)
        if value is None and spec.name in env:
            value = env[spec.name]()
        if value is not None:
            values[spec.name] = value
    for key in ("allow", "deny"):
        if key in values:
            values[key] = names(key, values[key])
    if "spool_dir" in values:
        values["spool_dir"] = os.fspath(values["spool_dir"])
    if "headers" in values:
        values["headers"] = dict(values["headers"])
    return Config(**values)


def _env_in_flight() -> int:
    value = environ.env_int(environ.KEELWATCH_MAX_IN_FLIGHT, Config.max_in_flight, minimum=1)
    if value > MAX_IN_FLIGHT:
        logger.warning(
            "%s=%d is above %d; using %d", environ.KEELWATCH_MAX_IN_FLIGHT, value, MAX_IN_FLIGHT,
            MAX_IN_FLIGHT,
        )  # fmt: skip
        return MAX_IN_FLIGHT
    return value


def _env_endpoint() -> str:
    value = environ.env_str(environ.KEELWATCH_ENDPOINT, DEFAULT_ENDPOINT)
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        logger.warning(
            "%s=%r is not an http(s) URL; using %r", environ.KEELWATCH_ENDPOINT, value,
            DEFAULT_ENDPOINT,
        )  # fmt: skip
        return DEFAULT_ENDPOINT
    return value


def _env_positive_float(name: str, default: float) -> float:
    value = environ.env_float(name, default, minimum=0.0)
    if value == 0.0:
        logger.warning("%s=0 is not allowed; using %r", name, default)
        return default
    return value
