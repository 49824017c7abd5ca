"""The whole path on the real embedded engine: SDK -> server -> store -> detectors -> webhook."""

from __future__ import annotations

import json
import time
import urllib.request
from datetime import datetime, timezone

import clickhouse_connect
import numpy as np
import pandas as pd
import pytest

from keelwatch._client import ServerClient
from keelwatch._demo import WebhookReceiver
from keelwatch.alerts import Rule
from keelwatch.collector import Client, monitor
from keelwatch.collector.server import ServerConfig, create_app

SECRET = "whsec_dGVzdC1zZWNyZXQtZm9yLWtlZWx3YXRjaA=="


def _reference(rng: np.random.Generator, n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": rng.normal(40, 10, n),
            "income": rng.lognormal(10, 0.5, n),
            "score": rng.uniform(0, 1, n),
            "plan": rng.choice(["basic", "pro", "team"], n, p=[0.5, 0.3, 0.2]),
        }
    )


@pytest.fixture
def receiver():
    hook = WebhookReceiver(SECRET)
    yield hook
    hook.close()


def test_drift_is_detected_end_to_end(store, live_server, receiver, tmp_path):
    rules = (Rule("retrain", "drift_share", 0.25, receiver.url, model="churn", cooldown_s=3600),)
    config = ServerConfig(
        data_dir=str(tmp_path), detect_interval_s=0, rules=rules, webhook_secret=SECRET
    )
    rng = np.random.default_rng(3)
    reference = _reference(rng, 3000)
    with live_server(create_app(config, store=store)) as server:
        api = ServerClient(server.url)
        added = api.add_baseline("churn", reference.to_csv(index=False).encode(), "csv")
        assert added["features"] == {
            "age": "numeric",
            "income": "numeric",
            "score": "numeric",
            "plan": "categorical",
        }

        sdk = Client(server.url, flush_interval=0.05)
        predict = monitor(model="churn", version="1", client=sdk)(lambda features: 0.5)

        def send(frame: pd.DataFrame) -> tuple[str, str]:
            start = datetime.now(timezone.utc).isoformat()
            for row in frame.to_dict("records"):
                predict(row)
            assert sdk.flush(10.0)
            return start, datetime.now(timezone.utc).isoformat()

        normal = send(_reference(rng, 2000))
        shifted_frame = _reference(rng, 2000)
        shifted_frame["age"] += 8  # 0.8 std
        shifted_frame["plan"] = rng.choice(["basic", "pro", "team"], 2000, p=[0.1, 0.2, 0.7])
        shifted = send(shifted_frame)
        sdk.shutdown()

        quiet = api.detect("churn", *normal)
        assert quiet["n_current"] == 2000
        assert not [r for r in quiet["results"] if r["deciding"] and r["drifted"]]
        assert quiet["alerts"] == []

        run = api.detect("churn", *shifted)
        flagged = {r["feature"] for r in run["results"] if r["deciding"] and r["drifted"]}
        assert flagged == {"age", "plan"}
        assert {r["method"] for r in run["results"]} == {
            "wasserstein",
            "psi",
            "jensen_shannon",
            "chi_square",
        }
        assert run["alerts"][0]["delivered"] is True
        # The other detectors over the same window come back with the run.
        others = run["detectors"]
        assert others["quality"]["rows"] == 2000 and others["quality"]["duplicate_ids"] == 0
        by = {f["feature"]: f for f in others["quality"]["features"]}
        age = shifted_frame["age"].to_numpy()
        lo, hi = reference["age"].min(), reference["age"].max()
        assert by["age"]["out_of_range_share"] == np.mean((age < lo) | (age > hi))
        assert by["plan"]["unseen_share"] == 0 and by["income"]["missing_rate"] == 0
        [ops] = others["operations"]
        assert (ops["version"], ops["calls"], ops["failures"]) == ("1", 2000, 0)
        assert 0 <= ops["latency_p50_ms"] <= ops["latency_p95_ms"] <= ops["latency_p99_ms"]
        assert others["labels"]["labelled"] == 0 and others["classification"] is None
        assert others["failures"] == []
        # ... and are stored beside the drift run, under its id.
        kept = store.query(
            "SELECT metric, value FROM detector_results WHERE run_id = {r:String} "
            "AND detector = 'quality' AND subject = 'age'",
            {"r": run["run_id"]},
        ).to_pylist()
        assert {r["metric"]: r["value"] for r in kept} == {
            "missing_rate": by["age"]["missing_rate"],
            "out_of_range_share": by["age"]["out_of_range_share"],
        }

        hook = receiver.received.get(timeout=10)
        assert hook["verified"]
        assert hook["event"]["type"] == "model.retrain"
        assert {d["feature"] for d in hook["event"]["data"]["drifted_features"]} == {"age", "plan"}

        metrics = urllib.request.urlopen(server.url + "/metrics").read().decode()
        assert 'keelwatch_feature_drifted{feature="age",model="churn"} 1.0' in metrics
        assert 'keelwatch_feature_drifted{feature="score",model="churn"} 0.0' in metrics
        assert 'keelwatch_drift_share{model="churn"} 0.5' in metrics
        share = by["age"]["out_of_range_share"]
        assert f'keelwatch_feature_out_of_range_share{{feature="age",model="churn"}} {share}' in (
            metrics
        )
        assert 'keelwatch_failure_rate{model="churn",slot="",version="1"} 0.0' in metrics
        assert 'keelwatch_latency_ms{model="churn",quantile="0.99",slot="",version="1"}' in metrics
        assert 'keelwatch_performance{metric="label_coverage",model="churn"} 0.0' in metrics

        # Other processes read the embedded store through the server's ClickHouse endpoint.
        port = int(server.url.rsplit(":", 1)[1])
        ch = clickhouse_connect.get_client(host="127.0.0.1", port=port)
        stored = ch.query(
            "SELECT count() FROM drift_results WHERE model = {m:String} AND drifted = 1",
            parameters={"m": "churn"},
        ).result_rows[0][0]
        assert stored >= 2
        deciding = ch.query(
            "SELECT feature, method FROM drift_results WHERE run_id = {r:String} AND deciding = 1 "
            "ORDER BY feature",
            parameters={"r": run["run_id"]},
        ).result_rows
        assert deciding == [
            ("age", "wasserstein"),
            ("income", "wasserstein"),
            ("plan", "jensen_shannon"),
            ("score", "wasserstein"),
        ]
        alerts = ch.query("SELECT rule, delivered FROM alerts").result_rows
        assert alerts == [("retrain", 1)]


def test_scheduler_runs_detectors_in_the_server(store, live_server, tmp_path):
    config = ServerConfig(data_dir=str(tmp_path), detect_interval_s=0.5, detect_window_s=600)
    rng = np.random.default_rng(5)
    with live_server(create_app(config, store=store)) as server:
        api = ServerClient(server.url)
        api.add_baseline("fraud", _reference(rng, 3000).to_csv(index=False).encode(), "csv")
        now = time.time()
        records = [
            {
                "prediction_id": f"p{i}",
                "model": "fraud",
                "ts": now - 1,
                "features": {"age": float(a), "income": 1.0, "score": 0.5, "plan": "pro"},
            }
            for i, a in enumerate(rng.normal(40, 10, 2000))
        ]
        body = json.dumps({"records": records}).encode()
        api.request("POST", "/v1/predictions", body)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            metrics = urllib.request.urlopen(server.url + "/metrics").read().decode()
            if 'keelwatch_detector_runs_total{model="fraud",status="ok"}' in metrics:
                break
            time.sleep(0.2)
        else:
            pytest.fail("the scheduled detector run never happened")
        # every feature was compared; "income" and "score" are constant, so they drift
        assert 'keelwatch_feature_drifted{feature="income",model="fraud"} 1.0' in metrics
        assert 'keelwatch_feature_drifted{feature="age",model="fraud"} 0.0' in metrics, metrics
