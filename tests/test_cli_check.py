"""The server's configuration files on the command line: refused before serving, checked alone."""

from __future__ import annotations

from keelwatch.cli import main


def test_bad_rules_file_is_refused_before_serving(tmp_path, capsys):
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - {name: r, metric: nope, threshold: 1, webhook: 'http://h'}\n")
    assert main(["serve", "--data", str(tmp_path / "d"), "--rules", str(rules)]) == 2
    assert "rule 'r'.metric: must be one of" in capsys.readouterr().err


def test_bad_drift_settings_file_is_refused_before_serving(tmp_path, capsys):
    drift = tmp_path / "drift.yaml"
    drift.write_text("models:\n  - {model: m, thresholds: {wasserstein: -1}}\n")
    assert main(["serve", "--data", str(tmp_path / "d"), "--drift-config", str(drift)]) == 2
    assert "models[0] (m).thresholds.wasserstein: must be > 0" in capsys.readouterr().err


def test_check_validates_the_server_files_without_serving(tmp_path, capsys):
    import json

    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules:\n  - {name: r, metric: drift_share, threshold: 0.3, webhook: 'http://h'}\n"
    )
    drift = tmp_path / "drift.yaml"
    drift.write_text(
        "models:\n  - {model: 'fraud-*', preset: evidently, correction: bh}\n"
        "  - {model: churn, calibrate: {chunks: 5}, thresholds: {psi: 0.2}}\n"
    )
    files = ["--rules", str(rules), "--drift-config", str(drift)]
    models = ["--model", "fraud-eu", "--model", "churn", "--model", "other"]
    assert main(["check", *files, *models]) == 0
    out = capsys.readouterr().out
    assert "rules.yaml: 1 rule (r)" in out
    assert "fraud-*              preset evidently; correction=bh" in out
    assert "preset keelwatch; thresholds={'psi': 0.2}; calibrate chunks=5" in out
    assert "model fraud-eu: entry 'fraud-*'" in out and "model other: no entry" in out
    assert main(["check", *files, *models, "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["models"] == {"fraud-eu": "fraud-*", "churn": "churn", "other": None}
    assert found["drift"][1]["calibrate"] == {"chunks": 5, "chunk_rows": None, "quantile": 0.95}
    drift.write_text("models:\n  - {model: churn, calibrate: {chunks: 1}}\n")
    assert main(["check", "--drift-config", str(drift)]) == 2
    assert "models[0] (churn).calibrate.chunks: must be >= 2" in capsys.readouterr().err
    assert main(["check"]) == 2
    assert "give --rules and/or --drift-config" in capsys.readouterr().err
