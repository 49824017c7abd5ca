"""The store's schema as numbered migrations, applied idempotently at start-up.

Features are stored in two maps per prediction, ``num`` (numeric) and ``cat`` (categorical), so
one table serves every model whatever its features. Tables are partitioned by day and ordered for
per-model time-range scans; ``ReplacingMergeTree`` on the record id plus insert deduplication
tokens make retried inserts leave one copy.
"""

from __future__ import annotations

from typing import NamedTuple

from ._base import Store
from ._baseline_tables import (
    BASELINE_GRID,
    BASELINE_ROWS,
    BASELINE_SORTED,
    BASELINE_VALUES,
    BASELINE_VALUES_BACKFILL,
    BASELINES,
    CALIBRATED_THRESHOLDS,
)

__all__ = ["MIGRATIONS", "Migration", "migrate"]


class Migration(NamedTuple):
    version: int
    name: str
    statements: tuple[str, ...]


_PREDICTIONS = """
CREATE TABLE IF NOT EXISTS predictions (
    project LowCardinality(String),
    model LowCardinality(String),
    version LowCardinality(String),
    slot LowCardinality(String),
    prediction_id String,
    ts DateTime64(6, 'UTC'),
    latency_ms Float64,
    error String,
    num Map(LowCardinality(String), Float64),
    cat Map(LowCardinality(String), String),
    out_label String,
    out_value Nullable(Float64),
    out_proba Array(Float64),
    out_text String,
    prompt_tokens UInt32,
    completion_tokens UInt32,
    tags Map(LowCardinality(String), String),
    trace_id String,
    span_id String,
    received_at DateTime64(3, 'UTC') DEFAULT now64(3)
) ENGINE = ReplacingMergeTree(received_at)
PARTITION BY toDate(ts)
ORDER BY (project, model, ts, prediction_id)
SETTINGS non_replicated_deduplication_window = 10000
"""

_OUTCOMES = """
CREATE TABLE IF NOT EXISTS outcomes (
    project LowCardinality(String),
    model LowCardinality(String),
    prediction_id String,
    ts DateTime64(6, 'UTC'),
    label String,
    value Nullable(Float64),
    received_at DateTime64(3, 'UTC') DEFAULT now64(3)
) ENGINE = ReplacingMergeTree(received_at)
PARTITION BY toYYYYMM(ts)
ORDER BY (project, model, prediction_id)
SETTINGS non_replicated_deduplication_window = 10000
"""

_DRIFT = """
CREATE TABLE IF NOT EXISTS drift_results (
    project LowCardinality(String),
    model LowCardinality(String),
    run_id String,
    window_start DateTime64(6, 'UTC'),
    window_end DateTime64(6, 'UTC'),
    baseline_id String,
    feature LowCardinality(String),
    kind LowCardinality(String),
    method LowCardinality(String),
    score Float64,
    p_value Nullable(Float64),
    threshold Float64,
    drifted UInt8,
    n_reference UInt64,
    n_current UInt64,
    computed_at DateTime64(3, 'UTC')
) ENGINE = MergeTree
PARTITION BY toYYYYMM(window_end)
ORDER BY (project, model, window_end, feature, method)
"""

_ALERTS = """
CREATE TABLE IF NOT EXISTS alerts (
    project LowCardinality(String),
    model LowCardinality(String),
    alert_id String,
    rule String,
    action LowCardinality(String),
    summary String,
    payload String,
    target String,
    response_status Int32,
    delivered UInt8,
    created_at DateTime64(3, 'UTC')
) ENGINE = MergeTree
PARTITION BY toYYYYMM(created_at)
ORDER BY (project, model, created_at)
"""

_AUDIT = """
CREATE TABLE IF NOT EXISTS audit_log (
    ts DateTime64(3, 'UTC') DEFAULT now64(3),
    actor String,
    action LowCardinality(String),
    target String,
    detail String
) ENGINE = MergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY ts
"""

_API_KEYS = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id String,
    project LowCardinality(String),
    role LowCardinality(String),
    key_hash String,
    name String,
    created_at DateTime64(3, 'UTC'),
    revoked_at Nullable(DateTime64(3, 'UTC')),
    updated_at DateTime64(6, 'UTC') DEFAULT now64(6)
) ENGINE = ReplacingMergeTree(updated_at)
ORDER BY key_id
"""

_SPANS = """
CREATE TABLE IF NOT EXISTS spans (
    project LowCardinality(String),
    service LowCardinality(String),
    trace_id String,
    span_id String,
    parent_span_id String,
    name LowCardinality(String),
    kind LowCardinality(String),
    start_time DateTime64(9, 'UTC'),
    end_time DateTime64(9, 'UTC'),
    duration_ms Float64,
    status_code LowCardinality(String),
    status_message String,
    scope LowCardinality(String),
    attributes Map(LowCardinality(String), String),
    resource Map(LowCardinality(String), String),
    events String,
    received_at DateTime64(3, 'UTC') DEFAULT now64(3),
    INDEX trace_id_idx trace_id TYPE bloom_filter(0.01) GRANULARITY 4
) ENGINE = ReplacingMergeTree(received_at)
PARTITION BY toDate(start_time)
ORDER BY (project, service, start_time, trace_id, span_id)
SETTINGS non_replicated_deduplication_window = 10000
"""

# Per-minute rollups of predictions, filled at insert time by a materialized view. The target
# keeps dedup tokens too, so a deduplicated insert does not count twice in the rollup.
_PREDICTIONS_1M = """
CREATE TABLE IF NOT EXISTS predictions_1m (
    project LowCardinality(String),
    model LowCardinality(String),
    version LowCardinality(String),
    slot LowCardinality(String),
    minute DateTime('UTC'),
    predictions SimpleAggregateFunction(sum, UInt64),
    errors SimpleAggregateFunction(sum, UInt64),
    latency_sum SimpleAggregateFunction(sum, Float64),
    latency_max SimpleAggregateFunction(max, Float64),
    latency_q AggregateFunction(quantilesTDigest(0.5, 0.9, 0.95, 0.99), Float64),
    prompt_tokens SimpleAggregateFunction(sum, UInt64),
    completion_tokens SimpleAggregateFunction(sum, UInt64)
) ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (project, model, version, slot, minute)
SETTINGS non_replicated_deduplication_window = 10000
"""

_ROLLUP_SELECT = """
SELECT project, model, version, slot, toStartOfMinute(ts) AS minute,
    count() AS predictions,
    countIf(error != '') AS errors,
    sum(latency_ms) AS latency_sum,
    max(latency_ms) AS latency_max,
    quantilesTDigestState(0.5, 0.9, 0.95, 0.99)(latency_ms) AS latency_q,
    sum(toUInt64(prompt_tokens)) AS prompt_tokens,
    sum(toUInt64(completion_tokens)) AS completion_tokens
FROM predictions
GROUP BY project, model, version, slot, minute
"""

_PREDICTIONS_1M_MV = (
    "CREATE MATERIALIZED VIEW IF NOT EXISTS predictions_1m_mv TO predictions_1m AS" + _ROLLUP_SELECT
)
# Rows stored before the view existed (the view only sees new inserts).
_PREDICTIONS_1M_BACKFILL = "INSERT INTO predictions_1m" + _ROLLUP_SELECT

# Prices for cost detectors, never applied at ingest: cost is computed at query time, so a new or
# corrected row re-prices past windows. A correction is a new row with the same key (the
# ``ORDER BY``); ``ReplacingMergeTree(recorded_at)`` keeps the latest and readers use ``FINAL``.
# ``version``/``slot`` '' means "any"; the most specific row effective at a prediction's ts wins.
_COMPUTE_PRICES = """
CREATE TABLE IF NOT EXISTS compute_prices (
    project LowCardinality(String),
    model LowCardinality(String),
    version LowCardinality(String),
    slot LowCardinality(String),
    effective_from DateTime64(6, 'UTC'),
    per_second Float64,
    per_prediction Float64,
    currency LowCardinality(String),
    recorded_by String,
    recorded_at DateTime64(6, 'UTC') DEFAULT now64(6)
) ENGINE = ReplacingMergeTree(recorded_at)
ORDER BY (project, model, version, slot, effective_from)
"""

_TOKEN_PRICES = """
CREATE TABLE IF NOT EXISTS token_prices (
    project LowCardinality(String),
    model LowCardinality(String),
    effective_from DateTime64(6, 'UTC'),
    prompt_per_million Float64,
    completion_per_million Float64,
    currency LowCardinality(String),
    recorded_by String,
    recorded_at DateTime64(6, 'UTC') DEFAULT now64(6)
) ENGINE = ReplacingMergeTree(recorded_at)
ORDER BY (project, model, effective_from)
"""

# What each drift run looked at beyond its time range: the version, slot and tag segment
# (canonical ``key=value,...`` text, ``detectors.format_segment``) and whether the window was a
# time range or ``window_count`` predictions. Defaults describe every earlier run: whole model,
# time window. A deterministic run id doubles as the insert deduplication token, which plain
# MergeTree honours only with a deduplication window, so a retried store leaves one copy.
_DRIFT_WINDOWS = (
    "ALTER TABLE drift_results ADD COLUMN IF NOT EXISTS version LowCardinality(String) DEFAULT ''",
    "ALTER TABLE drift_results ADD COLUMN IF NOT EXISTS slot LowCardinality(String) DEFAULT ''",
    "ALTER TABLE drift_results ADD COLUMN IF NOT EXISTS segment String DEFAULT ''",
    "ALTER TABLE drift_results ADD COLUMN IF NOT EXISTS "
    "window_kind LowCardinality(String) DEFAULT 'time'",
    "ALTER TABLE drift_results ADD COLUMN IF NOT EXISTS window_count UInt64 DEFAULT 0",
    "ALTER TABLE drift_results MODIFY SETTING non_replicated_deduplication_window = 10000",
)

#: Every detector beside drift, one row per (detector, metric, subject) and window; subject is
#: the feature for data quality, the currency for cost, empty otherwise (operations and cost rows
#: carry their own version and slot).
_DETECTOR_RESULTS = """
CREATE TABLE IF NOT EXISTS detector_results (
    project LowCardinality(String), model LowCardinality(String), run_id String,
    window_start DateTime64(6, 'UTC'), window_end DateTime64(6, 'UTC'),
    version LowCardinality(String), slot LowCardinality(String), segment String,
    detector LowCardinality(String), metric LowCardinality(String), subject String,
    value Float64, computed_at DateTime64(3, 'UTC')
) ENGINE = MergeTree
PARTITION BY toYYYYMM(window_end)
ORDER BY (project, model, detector, metric, window_end)
SETTINGS non_replicated_deduplication_window = 10000
"""

_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version UInt32,
    name String,
    applied_at DateTime64(3, 'UTC') DEFAULT now64(3)
) ENGINE = ReplacingMergeTree
ORDER BY version
"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "initial tables",
        (_PREDICTIONS, _OUTCOMES, BASELINES, BASELINE_ROWS, _DRIFT, _ALERTS, _AUDIT),
    ),
    Migration(
        2,
        "numeric baseline values in long form",
        (BASELINE_VALUES, BASELINE_VALUES_BACKFILL),
    ),
    Migration(3, "api keys, hashed, per project and role", (_API_KEYS,)),
    Migration(4, "OpenTelemetry spans", (_SPANS,)),
    Migration(
        5,
        "per-minute prediction rollups",
        (_PREDICTIONS_1M, _PREDICTIONS_1M_MV, _PREDICTIONS_1M_BACKFILL),
    ),
    Migration(
        6,
        "which result decided each feature, and corrected p-values",
        (
            "ALTER TABLE drift_results ADD COLUMN IF NOT EXISTS deciding UInt8 DEFAULT 0",
            "ALTER TABLE drift_results ADD COLUMN IF NOT EXISTS p_adjusted Nullable(Float64)",
        ),
    ),
    Migration(7, "sorted numeric baseline values per feature", (BASELINE_SORTED,)),
    Migration(8, "drift runs per version, slot, segment and count window", _DRIFT_WINDOWS),
    Migration(9, "compute and LLM token prices, effective-dated", (_COMPUTE_PRICES, _TOKEN_PRICES)),
    Migration(10, "baseline counts on the fine grid, per grid size", (BASELINE_GRID,)),
    Migration(11, "results of the detectors beside drift", (_DETECTOR_RESULTS,)),
    Migration(12, "calibrated drift thresholds per baseline", (CALIBRATED_THRESHOLDS,)),
    # Append new migrations here with the next version number; never renumber or edit one
    # that has shipped (stores remember applied versions in schema_migrations).
)


def migrate(store: Store) -> list[int]:
    """Apply the migrations ``store`` lacks, in order; returns the versions applied."""
    store.command(_MIGRATIONS_TABLE)
    done = set(store.query("SELECT version FROM schema_migrations").column("version").to_pylist())
    applied = []
    for migration in MIGRATIONS:
        if migration.version in done:
            continue
        for statement in migration.statements:
            store.command(statement)
        store.command(
            "INSERT INTO schema_migrations (version, name) VALUES ({v:UInt32}, {n:String})",
            {"v": migration.version, "n": migration.name},
        )
        applied.append(migration.version)
    return applied
