"""Drift settings files: parsed into DriftConfigs per model pattern, bad entries named."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from keelwatch.detectors import (
    DriftConfig,
    DriftSettingsError,
    ModelDrift,
    ThresholdCalibration,
    Window,
    as_feature_thresholds,
    calibrate_thresholds,
    load_drift_settings,
    parse_drift_settings,
    register_baseline,
    run_drift,
    run_id,
    stored_calibration,
)
from keelwatch.store import Store

FILE = """
models:
  - model: "fraud-*"
    preset: evidently
    correction: bh
  - model: churn
    numeric_methods: [wasserstein, psi, ks]
    categorical_methods: [jensen_shannon]
    thresholds: {wasserstein: 0.15, ks: 0.01}
    feature_thresholds: {tenure: {wasserstein: 0.05}}
    drift_share: 0.3
    min_samples: 100
    compat: nannyml
    ks_method: asymp
    exact_max_rows: 0
    grid_bins: 2000
    exact_budget: 4000000
    calibrate: {chunk_rows: 500, chunks: 10, quantile: 0.9}
  - model: "*"
    calibrate: true
"""


def _counted(store: Store, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The statements ``store`` runs from now on."""
    queries: list[str] = []
    query = store.query

    def counted(sql: str, *args: Any, **kwargs: Any) -> Any:
        queries.append(sql)
        return query(sql, *args, **kwargs)

    monkeypatch.setattr(store, "query", counted)
    return queries


def test_a_file_becomes_configs_per_model(tmp_path):
    path = tmp_path / "drift.yaml"
    path.write_text(FILE)
    settings = load_drift_settings(path)
    fraud = settings.for_model("fraud-eu")
    assert fraud.config == DriftConfig.evidently(correction="bh") and fraud.calibrate is None
    assert fraud.written() == {"correction": "bh"} and fraud.preset == "evidently"
    churn = settings.for_model("churn")
    assert churn.config == DriftConfig(
        numeric_methods=("wasserstein", "psi", "ks"),
        categorical_methods=("jensen_shannon",),
        thresholds={"wasserstein": 0.15, "ks": 0.01},
        feature_thresholds={"tenure": {"wasserstein": 0.05}},
        drift_share=0.3,
        min_samples=100,
        compat="nannyml",
        ks_method="asymp",
        exact_max_rows=0,
        grid_bins=2000,
        exact_budget=4_000_000,
    )
    assert churn.calibrate == ThresholdCalibration(chunks=10, chunk_rows=500, quantile=0.9)
    # The first matching entry applies; "*" catches the rest.
    assert settings.for_model("fraud") == ModelDrift("*", DriftConfig(), ThresholdCalibration())
    assert settings.matching("fraud") is settings.models[2] and settings.matching("x") is not None
    assert parse_drift_settings(None).for_model("any") == ModelDrift()
    assert parse_drift_settings(None).matching("any") is None
    assert parse_drift_settings({"models": []}).for_model("any").config == DriftConfig()


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([1], "the document must be a mapping with a 'models' list"),
        ({"models": {"model": "m"}}, "the document must be a mapping with a 'models' list"),
        ({"rules": []}, "rules: unknown field"),
        ({"models": ["m"]}, r"models\[0\]: must be a mapping"),
        ({"models": [{"preset": "evidently"}]}, r"models\[0\].model: is required"),
        ({"models": [{"model": "m", "treshold": 1}]}, r"models\[0\].treshold: unknown field"),
        ({"models": [{"model": "m", "preset": "nannyml"}]}, r"\(m\).preset: must be one of"),
        (
            {"models": [{"model": "m", "numeric_methods": "psi"}]},
            r"\(m\).numeric_methods: must be a list of method names",
        ),
        (
            {"models": [{"model": "m", "numeric_methods": ["psy"]}]},
            r"\(m\): unknown drift method: 'psy'",
        ),
        (
            {"models": [{"model": "m", "categorical_methods": ["ks"]}]},
            r"\(m\): ks does not apply to categorical features",
        ),
        ({"models": [{"model": "m", "drift_share": "half"}]}, r"drift_share: must be a number"),
        ({"models": [{"model": "m", "drift_share": 2}]}, r"drift_share must be in \(0, 1\]"),
        ({"models": [{"model": "m", "min_samples": 1.5}]}, "min_samples: must be an integer"),
        ({"models": [{"model": "m", "grid_bins": True}]}, "grid_bins: must be an integer"),
        ({"models": [{"model": "m", "exact_budget": 0}]}, "exact_budget must be >= 1"),
        ({"models": [{"model": "m", "compat": 3}]}, r"compat: must be a string, got 3"),
        ({"models": [{"model": "m", "correction": "holm"}]}, "correction must be one of"),
        ({"models": [{"model": "m", "thresholds": [0.1]}]}, "thresholds: must be a mapping"),
        ({"models": [{"model": "m", "thresholds": {"psi": "x"}}]}, r"thresholds.psi: must be a"),
        ({"models": [{"model": "m", "thresholds": {"psi": -1}}]}, r"thresholds.psi: must be > 0"),
        ({"models": [{"model": "m", "thresholds": {"pis": 1}}]}, "thresholds.pis: unknown drift"),
        ({"models": [{"model": "m", "thresholds": {"ks": 5}}]}, "thresholds.ks: an alpha must be"),
        (
            {"models": [{"model": "m", "feature_thresholds": {"x": {"psi": 0}}}]},
            r"feature_thresholds.x.psi: must be > 0",
        ),
        ({"models": [{"model": "m", "calibrate": "yes"}]}, "calibrate: must be true or a mapping"),
        ({"models": [{"model": "m", "calibrate": {"rows": 5}}]}, r"calibrate.rows: unknown field"),
        (
            {"models": [{"model": "m", "calibrate": {"chunks": 1}}]},
            "calibrate.chunks: must be >= 2",
        ),
        (
            {"models": [{"model": "m", "calibrate": {"quantile": 1}}]},
            r"calibrate.quantile: must be in \(0, 1\)",
        ),
        (
            {"models": [{"model": "m", "calibrate": {"chunk_rows": 0}}]},
            "calibrate.chunk_rows: must be >= 1",
        ),
    ],
)
def test_bad_settings_name_the_entry_and_field(document: Any, message: str):
    with pytest.raises(DriftSettingsError, match=message):
        parse_drift_settings(document)


def test_the_shipped_deployment_settings_parse():
    deploy = Path(__file__).parents[2] / "deploy" / "drift.yaml"
    settings = load_drift_settings(deploy)
    assert settings.for_model("legacy-churn").config.selection == "evidently"
    assert settings.for_model("churn").calibrate == ThresholdCalibration()


def test_unreadable_or_invalid_files(tmp_path):
    with pytest.raises(DriftSettingsError, match="cannot read drift settings file"):
        load_drift_settings(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: [\n")
    with pytest.raises(DriftSettingsError, match="is not valid YAML"):
        load_drift_settings(bad)


def test_calibrated_thresholds_sit_under_the_written_ones(store: Store, rng: np.random.Generator):
    n = 6000
    ref = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "y": rng.exponential(size=n),
            "c": rng.choice(["a", "b"], n, p=[0.7, 0.3]),
        }
    )
    baseline = register_baseline(store, "m", ref)
    entry = parse_drift_settings(
        yaml.safe_load(
            "models: [{model: m, numeric_methods: [psi, ks], categorical_methods: [chi_square],"
            " feature_thresholds: {x: {psi: 0.5}}, calibrate: {chunk_rows: 500, chunks: 8}}]"
        )
    ).for_model("m")
    resolved = entry.resolve(store, baseline)
    # p-value tests are not calibrated: PSI for numeric features, Jensen-Shannon (the
    # distance Evidently's rule and keelwatch decide categorical features with) for "c".
    expected = as_feature_thresholds(
        calibrate_thresholds(
            store,
            baseline,
            {"numeric": ("psi",), "categorical": ("jensen_shannon",)},
            chunks=8,
            chunk_rows=500,
        )
    )
    assert set(expected) == {"x", "y", "c"}
    assert resolved.feature_thresholds == {**expected, "x": {"psi": 0.5}}
    assert resolved.feature_thresholds["y"]["psi"] != DriftConfig().threshold("psi")
    assert ModelDrift("m", DriftConfig()).resolve(store, baseline) == DriftConfig()


def test_a_calibration_is_computed_once_per_baseline_and_setting(
    store: Store, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
):
    baseline = register_baseline(store, "m", pd.DataFrame({"x": rng.normal(size=4000)}))
    methods = {"numeric": ("wasserstein",), "categorical": ("jensen_shannon",)}
    first = stored_calibration(store, baseline, methods, chunks=6, chunk_rows=300)
    assert first == calibrate_thresholds(store, baseline, methods, chunks=6, chunk_rows=300)
    query = store.query
    queries = _counted(store, monkeypatch)
    # Read back (as after a server restart): one query, nothing recomputed.
    assert stored_calibration(store, baseline, methods, chunks=6, chunk_rows=300) == first
    assert len(queries) == 1 and "calibrated_thresholds" in queries[0]
    # Another setting is another calibration.
    other = stored_calibration(store, baseline, methods, chunks=6, chunk_rows=300, quantile=0.5)
    assert other[0].threshold < first[0].threshold and len(queries) > 2
    stored = query("SELECT count() AS n FROM calibrated_thresholds").column("n").to_pylist()
    assert stored == [2]


def test_the_exact_budget_changes_neither_results_nor_run_ids(
    store: Store, rng: np.random.Generator, insert: Any, monkeypatch: pytest.MonkeyPatch
):
    names = [f"f{i}" for i in range(5)]
    ref = pd.DataFrame({f: rng.normal(size=3000) for f in names})
    baseline = register_baseline(store, "m", ref)
    window = insert(store, "m", pd.DataFrame({f: rng.normal(0.1, 1, 2000) for f in names}))
    queries = _counted(store, monkeypatch)
    one_query = run_drift(store, baseline, window, DriftConfig())
    ecdf = sum("L1Distance" in q for q in queries)
    queries.clear()
    per_feature = run_drift(store, baseline, window, DriftConfig(exact_budget=1))
    assert (ecdf, sum("L1Distance" in q for q in queries)) == (1, 5)
    assert [(r.feature, r.method, r.score) for r in per_feature.results] == [
        (r.feature, r.method, r.score) for r in one_query.results
    ]
    same = Window("m", datetime(2026, 1, 1, tzinfo=timezone.utc), datetime.now(timezone.utc))
    budgets = {run_id(same, "b", DriftConfig(exact_budget=b)) for b in (1, 10**6, 10**9)}
    assert len(budgets) == 1
    assert run_id(same, "b", DriftConfig(min_samples=5)) not in budgets
