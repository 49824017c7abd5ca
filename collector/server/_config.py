"""Configuration of ``keelwatch serve``: arguments, then environment variables, then defaults."""

from __future__ import annotations

from dataclasses import dataclass, field

from keelwatch.alerts import Rule
from keelwatch.detectors import DriftSettings
from keelwatch.environ import (
    KEELWATCH_API_KEY,
    KEELWATCH_CLICKHOUSE_URL,
    KEELWATCH_DATA,
    KEELWATCH_DETECT_INTERVAL,
    KEELWATCH_HOST,
    KEELWATCH_PORT,
    KEELWATCH_RETENTION_DAYS,
    KEELWATCH_SERVER_SPOOL_DIR,
    KEELWATCH_WEBHOOK_SECRET,
    env_float,
    env_int,
    env_str,
)
from keelwatch.store import Retention

__all__ = ["ServerConfig"]


@dataclass(frozen=True)
class ServerConfig:
    """Everything the server needs to run."""

    data_dir: str = "./keelwatch-data"
    clickhouse_url: str = ""
    host: str = "127.0.0.1"
    port: int = 8787
    #: A bootstrap admin key for ``project`` (``KEELWATCH_API_KEY``), beside the keys in the
    #: store's ``api_keys`` table. With neither, only loopback clients are served.
    api_key: str = ""
    detect_interval_s: float = 300.0
    detect_window_s: float = 3600.0
    rules: tuple[Rule, ...] = ()
    #: What each model's drift runs compute and decide (``--drift-config``; default
    #: ``DriftConfig()`` for every model).
    drift: DriftSettings = field(default_factory=DriftSettings)
    webhook_secret: str = "keelwatch-dev-secret"
    project: str = "default"
    max_body_bytes: int = 16 * 1024 * 1024
    max_decompressed_bytes: int = 64 * 1024 * 1024
    #: Seconds API keys are cached; a revoked key stops working within this time.
    key_cache_ttl_s: float = 2.0
    #: Group commit in front of the writer: a group may wait up to ``insert_linger_s`` for
    #: ``insert_min_rows`` rows from concurrent requests. Off by default. With the spool on, the
    #: request is acknowledged once its group is spooled, and the spool's inserter groups
    #: inserts itself (up to 0.25 s or 50,000 rows, see ``SpoolingWriter``), so lingering here
    #: would only delay acknowledgements; it matters with ``spool_max_bytes=0``.
    insert_min_rows: int = 20_000
    insert_linger_s: float = 0.0
    #: Where batches wait while the store is down ("": ``<embedded store>/keelwatch-spool``,
    #: or ``./keelwatch-spool`` with a ClickHouse server).
    spool_dir: str = ""
    #: Bytes the spool may hold before ingest answers 503 (0 disables spooling).
    spool_max_bytes: int = 1 << 30
    #: Seconds between attempts to replay the spool.
    spool_retry_s: float = 1.0
    #: Days kept per kind of data, applied as table TTLs at start-up.
    retention: Retention = field(default_factory=Retention)

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536 and self.port != 0:
            raise ValueError(f"port must be 0..65535, got {self.port}")
        if self.detect_interval_s < 0:
            raise ValueError(f"detect_interval_s must be >= 0, got {self.detect_interval_s}")
        if self.insert_min_rows < 0 or not 0 <= self.insert_linger_s <= 1:
            raise ValueError("insert_min_rows must be >= 0 and insert_linger_s in 0..1")
        if self.spool_max_bytes < 0:
            raise ValueError(f"spool_max_bytes must be >= 0, got {self.spool_max_bytes}")
        if self.detect_window_s <= 0:
            raise ValueError(f"detect_window_s must be > 0, got {self.detect_window_s}")

    @classmethod
    def from_env(cls, retention_days: int | None = None, **overrides: object) -> ServerConfig:
        """Defaults overridden by environment variables, then by non-``None`` arguments."""
        values: dict[str, object] = {
            "data_dir": env_str(KEELWATCH_DATA, cls.data_dir),
            "clickhouse_url": env_str(KEELWATCH_CLICKHOUSE_URL, ""),
            "host": env_str(KEELWATCH_HOST, cls.host),
            "port": env_int(KEELWATCH_PORT, cls.port, minimum=0),
            "api_key": env_str(KEELWATCH_API_KEY, ""),
            "detect_interval_s": env_float(
                KEELWATCH_DETECT_INTERVAL, cls.detect_interval_s, minimum=0
            ),
            "webhook_secret": env_str(KEELWATCH_WEBHOOK_SECRET, cls.webhook_secret),
            "spool_dir": env_str(KEELWATCH_SERVER_SPOOL_DIR, ""),
            "retention": Retention(
                raw_days=(
                    env_int(KEELWATCH_RETENTION_DAYS, Retention.raw_days, minimum=0)
                    if retention_days is None
                    else retention_days
                )
            ),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]
