from __future__ import annotations

import argparse
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest

from keelwatch.cli import main, parse_time

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def test_parse_time():
    assert parse_time("now", NOW) == NOW
    assert parse_time("-15m", NOW) == NOW - timedelta(minutes=15)
    assert parse_time("-1.5h", NOW) == NOW - timedelta(hours=1.5)
    assert parse_time("2026-01-01T00:00:00", NOW) == datetime(2026, 1, 1, tzinfo=timezone.utc)
    with pytest.raises(argparse.ArgumentTypeError, match="not a time: 'yesterday'"):
        parse_time("yesterday", NOW)


def test_bad_flags_are_named(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["detect", "--model", "m", "--from", "yesterday"])
    assert exit_info.value.code == 2
    assert "not a time: 'yesterday'" in capsys.readouterr().err


def test_unreachable_server_is_a_clear_error(capsys):
    code = main(["baseline", "list", "--url", "http://127.0.0.1:9"])
    assert code == 1
    assert "cannot reach keelwatch server at http://127.0.0.1:9" in capsys.readouterr().err


def test_bad_rules_file_is_refused_before_serving(tmp_path, capsys):
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - {name: r, metric: nope, threshold: 1, webhook: 'http://h'}\n")
    assert main(["serve", "--data", str(tmp_path / "d"), "--rules", str(rules)]) == 2
    assert "rule 'r'.metric: must be one of" in capsys.readouterr().err


def test_demo_detects_the_injected_drift(tmp_path):
    # The README's first command, smaller: the real server, SDK, store, detectors and webhook.
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "keelwatch",
            "demo",
            "--data",
            str(tmp_path / "demo"),
            "--requests",
            "600",
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "detected as injected" in result.stdout
    assert "Webhook received: model.retrain" in result.stdout
    assert "signature valid" in result.stdout


def test_baseline_and_detect_commands_against_a_server(store, live_server, tmp_path, capsys):
    import json
    import time

    import numpy as np
    import pandas as pd

    from keelwatch.collector.server import ServerConfig, create_app, parse_predictions

    rng = np.random.default_rng(0)
    train = tmp_path / "train.csv"
    pd.DataFrame({"x": rng.normal(0, 1, 2000), "c": rng.choice(["a", "b"], 2000)}).to_csv(
        train, index=False
    )
    now = time.time()
    records = [
        {"prediction_id": str(i), "model": "m", "ts": now - 5, "features": {"x": x + 1, "c": "a"}}
        for i, x in enumerate(rng.normal(0, 1, 1000).tolist())
    ]
    store.insert("predictions", parse_predictions({"records": records}, "default", now).table)
    config = ServerConfig(data_dir=str(tmp_path), detect_interval_s=0)
    with live_server(create_app(config, store=store)) as server:
        url = ["--url", server.url]
        assert main(["baseline", "add", str(train), "--model", "m", *url]) == 0
        assert "baseline v1 for m: 2000 rows, 2 features" in capsys.readouterr().out
        assert main(["baseline", "show", "--model", "m", *url]) == 0
        shown = capsys.readouterr().out
        assert "x" in shown and "numeric" in shown and "categorical" in shown
        assert main(["baseline", "add", str(tmp_path / "nope.csv"), "--model", "m", *url]) == 2
        assert "baseline file not found" in capsys.readouterr().err

        assert main(["detect", "--model", "m", "--from", "-10m", "--json", *url]) == 0
        run = json.loads(capsys.readouterr().out)
        drifted = {r["feature"] for r in run["results"] if r["deciding"] and r["drifted"]}
        assert run["n_current"] == 1000 and drifted == {"x", "c"}
        assert main(["detect", "--model", "m", "--from", "-10m", *url]) == 0
        assert "DRIFT" in capsys.readouterr().out
        assert main(["detect", "--model", "unknown", *url]) == 1
        assert "has no baseline" in capsys.readouterr().err


def test_keys_commands_on_a_stopped_store(tmp_path, capsys):
    import json

    data = ["--data", str(tmp_path / "store")]
    assert main(["keys", *data, "create", "--role", "read", "--name", "grafana"]) == 0
    created = json.loads(capsys.readouterr().out)
    assert created["role"] == "read" and created["key"]
    assert main(["keys", *data, "list"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [k["name"] for k in listed] == ["grafana"]
    assert created["key"] not in json.dumps(listed)  # only hashes are kept
    with pytest.raises(SystemExit):
        main(["keys", *data, "create", "--role", "superuser"])


def test_serve_configuration_from_environment(monkeypatch):
    from keelwatch.collector.server import ServerConfig

    monkeypatch.setenv("KEELWATCH_RETENTION_DAYS", "30")
    monkeypatch.setenv("KEELWATCH_PORT", "not-a-port")
    config = ServerConfig.from_env()
    assert config.retention.raw_days == 30 and config.port == 8787
    assert ServerConfig.from_env(retention_days=7).retention.raw_days == 7
