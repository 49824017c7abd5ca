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

__all__ = [
    "ALL_TRAFFIC",
    "Scope",
    "alerts",
    "connect",
    "detector_history",
    "drift_history",
    "latest_run",
    "models",
    "scope_label",
    "scopes",
    "volume",
]


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


#: The drift results of one model's whole traffic, a version, a deployment slot or a tag
#: segment (``tenant=acme``); ("", "", "") is every prediction of the model.
Scope = tuple[str, str, str]
ALL_TRAFFIC: Scope = ("", "", "")
_SCOPE = (
    "model = {m:String} AND version = {ver:String} AND slot = {slot:String} "
    "AND segment = {seg:String}"
)


def scopes(client: Any, model: str) -> list[Scope]:
    """The (version, slot, segment) scopes ``model`` has drift results for, all traffic first."""
    frame = client.query_df(
        "SELECT DISTINCT version, slot, segment FROM drift_results WHERE model = {m:String} "
        "ORDER BY version, slot, segment",
        parameters={"m": model},
    )
    found = [(str(r.version), str(r.slot), str(r.segment)) for r in frame.itertuples()]
    return [ALL_TRAFFIC] + [s for s in found if s != ALL_TRAFFIC]


def scope_label(scope: Scope) -> str:
    parts = [f"version {scope[0]}" if scope[0] else "", f"slot {scope[1]}" if scope[1] else ""]
    parts.append(scope[2])
    return ", ".join(p for p in parts if p) or "all traffic"


def _scoped(model: str, scope: Scope) -> dict[str, str]:
    return {"m": model, "ver": scope[0], "slot": scope[1], "seg": scope[2]}


def drift_history(client: Any, model: str, scope: Scope = ALL_TRAFFIC) -> pd.DataFrame:
    """Every drift result of ``model`` in ``scope``: one row per window end, feature and method."""
    return client.query_df(
        "SELECT window_end, feature, kind, method, score, p_value, threshold, drifted, deciding, "
        f"n_current FROM drift_results WHERE {_SCOPE} ORDER BY window_end, feature, method",
        parameters=_scoped(model, scope),
    )


def detector_history(client: Any, model: str, scope: Scope = ALL_TRAFFIC) -> pd.DataFrame:
    """The other detectors' metrics of ``model``'s windows in ``scope``, one row per window
    end, metric and subject (feature, or version/slot for operations and cost).

    A window's scope is its drift run's (the results share the run id): the version and slot
    columns of ``detector_results`` are those of each result, which for operations and cost
    break a whole-traffic window down by version and slot.
    """
    return client.query_df(
        "SELECT window_end, concat(detector, ': ', metric) AS metric, "
        "if(subject != '', subject, concat(version, '/', slot)) AS subject, value "
        "FROM detector_results WHERE model = {m:String} AND run_id IN "
        f"(SELECT run_id FROM drift_results WHERE {_SCOPE}) "
        "ORDER BY window_end, metric, subject",
        parameters=_scoped(model, scope),
    )


def latest_run(client: Any, model: str, scope: Scope = ALL_TRAFFIC) -> pd.DataFrame:
    """The results of ``model``'s most recent detector run in ``scope``."""
    return client.query_df(
        "SELECT feature, kind, method, deciding, score, p_value, p_adjusted, threshold, drifted, "
        f"n_reference, n_current FROM drift_results WHERE {_SCOPE} AND run_id = ("
        f" SELECT argMax(run_id, computed_at) FROM drift_results WHERE {_SCOPE}) "
        "ORDER BY feature, method",
        parameters=_scoped(model, scope),
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
