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
