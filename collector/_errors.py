"""The collector SDK's one exception family.

::

    CollectorError                 base of every error the SDK raises on purpose
    ├── ConfigError (ValueError)   a bad constructor / ``configure`` argument, raised at once
    └── TransportError             a request that did not get an HTTP answer (converted at the edge)

Only ``ConfigError`` ever reaches user code: everything on the prediction path is caught, counted
and logged (rate-limited) instead.
"""

from __future__ import annotations


class CollectorError(Exception):
    """Base of the errors raised by ``keelwatch.collector``."""


class ConfigError(CollectorError, ValueError):
    """An invalid configuration value; ``field`` names the argument, ``value`` is what was given."""

    def __init__(self, field: str, value: object, problem: str) -> None:
        super().__init__(f"{field}={value!r}: {problem}")
        self.field = field
        self.value = value


class TransportError(CollectorError):
    """A request that failed before an HTTP status was received (refused, timed out, garbage)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason
