"""The server's drift runs follow its drift settings: methods, thresholds, calibration."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from keelwatch.collector.server import parse_predictions
from keelwatch.detectors import (
    DriftConfig,
    as_feature_thresholds,
    calibrate_thresholds,
    parse_drift_settings,
    register_baseline,
)
from keelwatch.store import EmbeddedStore

SETTINGS = """
models:
  - model: strict
    numeric_methods: [ks, psi]
    categorical_methods: [chi_square]
    thresholds: {ks: 0.01}
    correction: bonferroni
  - model: calibrated
    calibrate: {chunk_rows: 400, chunks: 10}
    feature_thresholds: {c: {jensen_shannon: 0.4}}
  - model: tiny
    calibrate: {chunk_rows: 5000}
"""


def _traffic(store: EmbeddedStore, model: str, rng: np.random.Generator, n: int) -> None:
    now = time.time()
    records = [
        {
            "prediction_id": f"{model}-{i}",
            "model": model,
            "ts": now - 5,
            "features": {"x": x, "c": str(rng.choice(["a", "b"]))},
        }
        for i, x in enumerate(rng.normal(0.05, 1, n).tolist())
    ]
    store.insert("predictions", parse_predictions({"records": records}, "default", now).table)


def _detect(client: Any, model: str) -> Any:
    now = time.time()
    return client.post("/v1/detect", json={"model": model, "start": now - 600, "end": now + 1})


def test_each_model_runs_its_settings(store: EmbeddedStore, app_client: Callable[..., Any]):
    import yaml

    rng = np.random.default_rng(7)
    train = pd.DataFrame({"x": rng.normal(size=4000), "c": rng.choice(["a", "b"], 4000)})
    baselines = {m: register_baseline(store, m, train) for m in ("strict", "calibrated", "other")}
    register_baseline(store, "tiny", train.head(100))
    for model in baselines:
        _traffic(store, model, rng, 800)
    settings = parse_drift_settings(yaml.safe_load(SETTINGS))
    with app_client(drift=settings) as client:
        strict = _detect(client, "strict").json()
        deciding = {r["feature"]: r for r in strict["results"] if r["deciding"]}
        assert {f: r["method"] for f, r in deciding.items()} == {"x": "ks", "c": "chi_square"}
        assert deciding["x"]["threshold"] == 0.01
        # Bonferroni over the two deciding tests.
        x = deciding["x"]
        assert x["p_adjusted"] == min(1.0, 2 * x["p_value"])

        calibrated = _detect(client, "calibrated").json()
        expected = as_feature_thresholds(
            calibrate_thresholds(store, baselines["calibrated"], chunks=10, chunk_rows=400)
        )
        found = {(r["feature"], r["method"]): r["threshold"] for r in calibrated["results"]}
        assert found["x", "wasserstein"] == expected["x"]["wasserstein"] != 0.1
        assert found["c", "jensen_shannon"] == 0.4  # written, over the calibrated one

        other = _detect(client, "other").json()
        found = {(r["feature"], r["method"]): r["threshold"] for r in other["results"]}
        assert found == {
            (f, m): DriftConfig().threshold(m)
            for f, methods in (
                ("x", ("wasserstein", "psi")),
                ("c", ("jensen_shannon", "chi_square")),
            )
            for m in methods
        }

        # Backfills and per-tag runs take the model's settings too.
        now = time.time()
        body = {"model": "strict", "start": now - 600, "end": now + 1, "every": 601}
        filled = client.post("/v1/detect", json={**body, "backfill": True}).json()
        (window,) = [w for w in filled["windows"] if w["status"] == "stored"]
        stored = store.query(
            "SELECT DISTINCT method, threshold FROM drift_results WHERE run_id = {r:String}",
            {"r": window["run_id"]},
        ).to_pylist()
        assert {(r["method"], r["threshold"]) for r in stored} == {
            ("ks", 0.01),
            ("psi", 0.1),
            ("chi_square", 0.05),
        }

        refused = _detect(client, "tiny")
        assert refused.status_code == 422
        assert "drift settings of model 'tiny' (tiny): calibrating thresholds" in refused.text
        assert "too small" in refused.text
