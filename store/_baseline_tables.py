"""Tables of registered baselines and what is derived from them once.

A baseline never changes after registration, so everything computed from it (its values per
feature, sorted values, fine-grid counts, calibrated thresholds) is kept and read back instead of
being recomputed per run. The migrations that create them are in ``_schema``.
"""

from __future__ import annotations

__all__ = [
    "BASELINES",
    "BASELINE_GRID",
    "BASELINE_ROWS",
    "BASELINE_SORTED",
    "BASELINE_VALUES",
    "BASELINE_VALUES_BACKFILL",
    "CALIBRATED_THRESHOLDS",
]

BASELINES = """
CREATE TABLE IF NOT EXISTS baselines (
    project LowCardinality(String),
    model LowCardinality(String),
    baseline_id String,
    version UInt32,
    source String,
    content_hash String,
    feature_schema String,
    profile String,
    row_count UInt64,
    created_by String,
    created_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree
ORDER BY (project, model, version)
"""

BASELINE_ROWS = """
CREATE TABLE IF NOT EXISTS baseline_rows (
    baseline_id String,
    row UInt64,
    num Map(LowCardinality(String), Float64),
    cat Map(LowCardinality(String), String)
) ENGINE = ReplacingMergeTree
ORDER BY (baseline_id, row)
"""

BASELINE_VALUES = """
CREATE TABLE IF NOT EXISTS baseline_values (
    baseline_id String,
    feature LowCardinality(String),
    row UInt64,
    value Float64
) ENGINE = MergeTree
ORDER BY (baseline_id, feature)
"""

# Numeric baseline values one per row, so a detector reads one feature's values without decoding
# every row's map; baselines registered before this migration are copied over once.
BASELINE_VALUES_BACKFILL = """
INSERT INTO baseline_values (baseline_id, feature, row, value)
SELECT baseline_id, k, row, v FROM baseline_rows ARRAY JOIN mapKeys(num) AS k, mapValues(num) AS v
WHERE isFinite(v) AND baseline_id NOT IN (SELECT DISTINCT baseline_id FROM baseline_values)
"""

# Each numeric baseline feature's finite values sorted once at registration (one row per
# feature), so exact ECDF detectors sort only the window. Older baselines have no rows here and
# are read from baseline_values instead.
BASELINE_SORTED = """
CREATE TABLE IF NOT EXISTS baseline_sorted (
    baseline_id String,
    feature LowCardinality(String),
    sorted_values Array(Float64)
) ENGINE = ReplacingMergeTree
ORDER BY (baseline_id, feature)
"""

# Each numeric baseline feature's counts on the fine grid of the large-window detectors, per grid
# size, computed on first use: a baseline never changes, so its reference side is read once.
BASELINE_GRID = """
CREATE TABLE IF NOT EXISTS baseline_grid (
    baseline_id String,
    bins UInt32,
    feature LowCardinality(String),
    cells Array(UInt64),
    below UInt64,
    above UInt64,
    outside Float64
) ENGINE = ReplacingMergeTree
ORDER BY (baseline_id, bins, feature)
"""

# Drift thresholds calibrated from a baseline (leave-one-chunk-out), per calibration setting
# (methods, chunks, chunk rows, quantile as JSON): computed on a server's first run with them and
# read back after, since a baseline never changes.
CALIBRATED_THRESHOLDS = """
CREATE TABLE IF NOT EXISTS calibrated_thresholds (
    baseline_id String,
    calibration String,
    feature LowCardinality(String),
    method LowCardinality(String),
    threshold Float64,
    chunk_rows UInt64,
    scores Array(Float64),
    computed_at DateTime64(3, 'UTC') DEFAULT now64(3)
) ENGINE = ReplacingMergeTree
ORDER BY (baseline_id, calibration, feature, method)
"""
