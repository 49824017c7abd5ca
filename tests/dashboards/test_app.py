"""The Streamlit app, run by Streamlit's own test harness against a live server and store."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
from streamlit.testing.v1 import AppTest

from keelwatch.collector.server import ServerConfig, create_app
from keelwatch.dashboards import APP
from keelwatch.detectors import (
    Window,
    detect_window,
    register_baseline,
    run_drift,
    store_detection,
    store_run,
)


def _ingest(store, rng: np.random.Generator, shift: float, when: float, n: int = 400) -> None:
    from keelwatch.collector.server import parse_predictions

    records = [
        {
            "prediction_id": f"{when}-{i}",
            "model": "churn",
            "ts": when,
            "latency_ms": 2.0,
            "features": {"age": float(a), "plan": "pro"},
        }
        for i, a in enumerate(rng.normal(40 + shift, 10, n))
    ]
    store.insert(
        "predictions", parse_predictions({"records": records}, "default", time.time()).table
    )


def test_dashboard_shows_drift_over_time(store, live_server, tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    reference = pd.DataFrame({"age": rng.normal(40, 10, 1000), "plan": ["pro"] * 1000})
    baseline = register_baseline(store, "churn", reference)
    now = time.time()
    for minutes_ago, shift in ((30, 0.0), (10, 9.0)):
        _ingest(store, rng, shift, now - minutes_ago * 60)
        end = datetime.fromtimestamp(now - minutes_ago * 60 + 60, timezone.utc)
        window = Window("churn", end - timedelta(minutes=5), end)
        run = run_drift(store, baseline, window)
        store_run(store, run)
        store_detection(store, run.run_id, detect_window(store, window, baseline, run))

    # A later run of one tag segment (no predictions carry that tag, so nothing drifts there)
    # must not become the model's "latest run".
    segment = (("tenant", "acme"),)
    end = datetime.fromtimestamp(now, timezone.utc)
    window = Window("churn", end - timedelta(hours=1), end, segment=segment)
    run = run_drift(store, baseline, window)
    store_run(store, run)
    store_detection(store, run.run_id, detect_window(store, window, baseline, run))

    with live_server(
        create_app(ServerConfig(data_dir=str(tmp_path), detect_interval_s=0), store=store)
    ) as server:
        monkeypatch.setenv("KEELWATCH_ENDPOINT", server.url)
        app = AppTest.from_file(str(APP), default_timeout=60).run()
        scope = app.sidebar.selectbox[1]
        assert scope.value == ("", "", "")
        assert scope.options == ["all traffic", "tenant=acme"]
        # Checked below, after the whole-traffic view.
        segment_view = AppTest.from_file(str(APP), default_timeout=60).run()
        segment_view.sidebar.selectbox[1].set_value(("", "", "tenant=acme")).run()

    assert not app.exception, app.exception
    assert app.sidebar.selectbox[0].value == "churn"
    assert [m.value for m in app.metric] == ["800", "0", "2"]
    assert app.selectbox[0].value == "deciding method per feature"
    assert "wasserstein" in app.selectbox[0].options
    latest = app.dataframe[0].value
    assert set(latest["feature"]) == {"age", "plan"}
    assert "Drifted features: age" in [m.value for m in app.markdown]
    # The other detectors' history, read back from detector_results.
    metric = app.selectbox[1]
    assert metric.label == "Metric"
    assert {"quality: missing_rate", "operations: latency_p95_ms", "labels: coverage"} <= set(
        metric.options
    )

    assert not segment_view.exception, segment_view.exception
    assert [m.value for m in segment_view.metric][2] == "1"
    assert "Drifted features: none" in [m.value for m in segment_view.markdown]
    # The other detectors follow the scope: the segment's window had no calls to time.
    segment_metrics = set(segment_view.selectbox[1].options)
    assert "quality: rows" in segment_metrics
    assert "operations: latency_p95_ms" not in segment_metrics


def test_dashboard_explains_an_unreachable_server(monkeypatch):
    monkeypatch.setenv("KEELWATCH_ENDPOINT", "http://127.0.0.1:9")
    app = AppTest.from_file(str(APP), default_timeout=60).run()
    assert "Cannot read the keelwatch store" in app.error[0].value
