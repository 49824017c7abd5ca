"""Per-minute rollups: filled by the view, deduplicated with their source, quantiles right."""

from __future__ import annotations

import time

import numpy as np
import pyarrow as pa

from keelwatch.store import EmbeddedStore


def rows(n: int, start: float, latency: np.ndarray, errors: int = 0) -> pa.Table:
    return pa.table(
        {
            "project": ["p"] * n,
            "model": ["churn"] * n,
            "prediction_id": [f"id{start}-{i}" for i in range(n)],
            "ts": pa.array(((start + np.arange(n) * 0.01) * 1e6).astype("int64")).cast(
                pa.timestamp("us", tz="UTC")
            ),
            "latency_ms": latency,
            "error": ["boom"] * errors + [""] * (n - errors),
            "prompt_tokens": pa.array([2] * n, pa.uint32()),
        }
    )


ROLLUP = (
    "SELECT minute, sum(predictions) AS n, sum(errors) AS errors, sum(prompt_tokens) AS pt, "
    "quantilesTDigestMerge(0.5, 0.9, 0.95, 0.99)(latency_q) AS q, max(latency_max) AS mx "
    "FROM predictions_1m WHERE model = {m:String} GROUP BY minute ORDER BY minute"
)


def test_rollup_counts_errors_and_quantiles(store: EmbeddedStore) -> None:
    minute = (time.time() // 60 - 5) * 60
    latency = np.random.default_rng(1).exponential(20.0, 2000)
    store.insert("predictions", rows(2000, minute, latency, errors=7), dedup_token="a")
    store.insert("predictions", rows(2000, minute, latency, errors=7), dedup_token="a")  # retry
    store.insert("predictions", rows(10, minute + 60, np.ones(10)), dedup_token="b")
    found = store.query(ROLLUP, {"m": "churn"}).to_pylist()
    assert [(r["n"], r["errors"], r["pt"]) for r in found] == [(2000, 7, 4000), (10, 0, 20)]
    exact = np.quantile(latency, [0.5, 0.9, 0.95, 0.99])
    assert np.allclose(found[0]["q"], exact, rtol=0.05)
    assert found[0]["mx"] == latency.max()


def test_rollup_matches_raw_counts(store: EmbeddedStore) -> None:
    start = time.time() - 600
    store.insert("predictions", rows(500, start, np.full(500, 3.0)))
    raw = store.query(
        "SELECT toStartOfMinute(ts) AS minute, count() AS n FROM predictions "
        "GROUP BY minute ORDER BY minute"
    ).to_pylist()
    rolled = store.query(ROLLUP, {"m": "churn"}).to_pylist()
    assert [(r["minute"], r["n"]) for r in raw] == [(r["minute"], r["n"]) for r in rolled]
