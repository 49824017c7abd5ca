"""Retention: a TTL per table, set at start-up from configuration (``ALTER TABLE ... MODIFY TTL``).

Tables are partitioned by day or month and set ``ttl_only_drop_parts``, so expiry drops whole
parts instead of rewriting them. A table whose TTL already matches is left alone, so start-up
does not re-materialise TTLs on every restart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ._base import Store, StoreError, check_identifier

__all__ = ["RETAINED", "Retention", "apply_retention"]

#: Tables with a retention period, their time column and which period applies.
RETAINED: dict[str, tuple[str, str]] = {
    "predictions": ("ts", "raw_days"),
    "outcomes": ("ts", "raw_days"),
    "spans": ("start_time", "raw_days"),
    "predictions_1m": ("minute", "rollup_days"),
    "drift_results": ("window_end", "results_days"),
    "detector_results": ("window_end", "results_days"),
    "alerts": ("created_at", "results_days"),
}
_TTL = re.compile(r"\bTTL\s+(.+?)(?:\s+SETTINGS\s|$)", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class Retention:
    """Days to keep each kind of data; ``0`` keeps it forever."""

    raw_days: int = 90
    rollup_days: int = 400
    results_days: int = 400

    def __post_init__(self) -> None:
        for name in ("raw_days", "rollup_days", "results_days"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 36500:
                raise ValueError(f"{name}: must be an integer of days in 0..36500, got {value!r}")


def _current_ttl(store: Store, table: str) -> str:
    rows = store.query(
        "SELECT create_table_query AS q FROM system.tables "
        "WHERE database = currentDatabase() AND name = {t:String}",
        {"t": table},
    ).to_pylist()
    if not rows:
        return ""
    found = _TTL.search(rows[0]["q"])
    return re.sub(r"\s+", "", found.group(1)) if found else ""


def apply_retention(store: Store, retention: Retention) -> dict[str, int]:
    """Set each table's TTL from ``retention``; returns the days applied per changed table."""
    changed: dict[str, int] = {}
    for table, (column, period) in RETAINED.items():
        days = int(getattr(retention, period))
        check_identifier(table), check_identifier(column)
        current = _current_ttl(store, table)
        # Both are ints and allow-listed names: no outside text reaches the statement.
        wanted = f"toDateTime({column}) + toIntervalDay({days})"
        if days == 0:
            if current:
                store.command(f"ALTER TABLE {table} REMOVE TTL")
                changed[table] = 0
            continue
        if current.replace("`", "") == re.sub(r"\s+", "", wanted):
            continue
        try:
            store.command(f"ALTER TABLE {table} MODIFY SETTING ttl_only_drop_parts = 1")
            store.command(f"ALTER TABLE {table} MODIFY TTL {wanted}")
        except StoreError as exc:
            if "UNKNOWN_TABLE" in str(exc):
                continue
            raise
        changed[table] = days
    return changed
