"""What the dashboards read: small, pre-aggregated queries through the ClickHouse protocol.

The dashboards never open the store themselves: they reach ``keelwatch serve`` (which answers
ClickHouse's HTTP protocol for the embedded store) or a ClickHouse server, with clickhouse-connect.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pandas as pd

from keelwatch.environ import (
    KEELWATCH_API_KEY,
    KEELWATCH_CLICKHOUSE_URL,
    KEELWATCH_ENDPOINT,
    env_str,
)

__all__ = ["alerts", "connect", "drift_history", "latest_run", "models", "volume"]


def connect(url: str | None = None, api_key: str | None = None) -> Any:
    """A clickhouse-connect client for the store behind ``url`` (keelwatch or ClickHouse)."""
    import clickhouse_connect

    target = (
        url
        or env_str(KEELWATCH_CLICKHOUSE_URL, "")
        or env_str(KEELWATCH_ENDPOINT, "http://127.0.0.1:8787")
    )
    parts = urlsplit(target)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {target!r}")
    return clickhouse_connect.get_client(
        host=parts.hostname,
        port=parts.port or (443 if parts.scheme == "https" else 80),
        username=parts.username or "default",
        password=parts.password
        or (api_key if api_key is not None else env_str(KEELWATCH_API_KEY, "")),
        secure=parts.scheme == "https",
    )


def models(client: Any) -> list[str]:
    """Models that have predictions or drift results."""
    frame = client.query_df(
        "SELECT DISTINCT model FROM (SELECT model FROM drift_results UNION ALL "
        "SELECT model FROM baselines) ORDER BY model"
    )
    return [str(m) for m in frame["model"]] if not frame.empty else []


def drift_history(client: Any, model: str) -> pd.DataFrame:
    """Every drift result of ``model``: one row per window end, feature and method."""
    return client.query_df(
        "SELECT window_end, feature, kind, method, score, p_value, threshold, drifted, deciding, "
        "n_current "
        "FROM drift_results WHERE model = {m:String} ORDER BY window_end, feature, method",
        parameters={"m": model},
    )


def latest_run(client: Any, model: str) -> pd.DataFrame:
    """The results of ``model``'s most recent detector run."""
    return client.query_df(
        "SELECT feature, kind, method, deciding, score, p_value, p_adjusted, threshold, drifted, "
        "n_reference, n_current "
        "FROM drift_results WHERE model = {m:String} AND run_id = ("
        " SELECT argMax(run_id, computed_at) FROM drift_results WHERE model = {m:String}) "
        "ORDER BY feature, method",
        parameters={"m": model},
    )


def volume(client: Any, model: str) -> pd.DataFrame:
    """Predictions, errors and latency quantiles per minute for ``model``."""
    return client.query_df(
        "SELECT toStartOfMinute(ts) AS minute, count() AS predictions, "
        "countIf(error != '') AS errors, "
        "quantile(0.5)(latency_ms) AS p50_ms, quantile(0.99)(latency_ms) AS p99_ms "
        "FROM predictions WHERE model = {m:String} GROUP BY minute ORDER BY minute",
        parameters={"m": model},
    )


def alerts(client: Any, model: str) -> pd.DataFrame:
    """Alerts fired for ``model``, newest first."""
    return client.query_df(
        "SELECT created_at, rule, action, summary, target, response_status, delivered "
        "FROM alerts WHERE model = {m:String} ORDER BY created_at DESC LIMIT 100",
        parameters={"m": model},
    )
