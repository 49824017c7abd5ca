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
        quality = run["detectors"]["quality"]
        assert quality["rows"] == 1000
        assert [f["feature"] for f in quality["features"] if f["constant"]] == ["c"]
        x = np.array([r["features"]["x"] for r in records])
        train_x = pd.read_csv(train)["x"]
        outside = np.mean((x < train_x.min()) | (x > train_x.max()))
        assert [f["out_of_range_share"] for f in quality["features"]] == [outside, 0] != [0, 0]
        assert run["detectors"]["operations"][0]["calls"] == 1000
        assert main(["detect", "--model", "m", "--from", "-10m", *url]) == 0
        printed = capsys.readouterr().out
        assert "DRIFT" in printed and "quality: 1000 rows, 0 repeated ids" in printed
        assert "constant" in printed and "operations -/-: 1000 calls, 0.00% failed" in printed
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


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--every", "1h"], "--every cuts --from..--to into windows: add --backfill"),
        (["--backfill"], "--backfill needs --every or --count"),
        (["--replace", "--count", "5"], "--replace only applies with --backfill"),
        (["--segment", "t=a", "--segment", "t=b"], "--segment: a tag is given twice"),
        (["--segment", "t=a", "--by-tag", "t"], "--by-tag: tag 't' is already fixed"),
        (["--max-values", "3"], "--max-values only applies with --by-tag"),
    ],
)
def test_bad_detect_flag_combinations_are_named(capsys, flags, message):
    assert main(["detect", "--model", "m", "--url", "http://127.0.0.1:9", *flags]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--segment", "tenant"], "not key=value: 'tenant'"),
        (["--every", "0h"], "not a duration: '0h'"),
        (["--every", "1w"], "not a duration: '1w'"),
        (["--count", "0"], "not a whole number >= 1: '0'"),
        (["--count", "5", "--every", "1h"], "not allowed with argument"),
    ],
)
def test_bad_detect_flag_values_are_named(capsys, flags, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["detect", "--model", "m", *flags])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_windows_segments_and_backfill_against_a_server(store, live_server, tmp_path, capsys):
    import json
    import uuid

    import numpy as np
    import pandas as pd
    import pyarrow as pa

    from keelwatch._client import ServerClient, ServerError
    from keelwatch.collector.server import ServerConfig, create_app

    rng = np.random.default_rng(1)
    train = tmp_path / "train.csv"
    pd.DataFrame({"x": rng.normal(0, 1, 2000)}).to_csv(train, index=False)
    # Two hours of traffic ending a minute ago, one row per 6 s alternating tenants a and b;
    # only b is shifted (by 2 standard deviations).
    t0 = (datetime.now(timezone.utc) - timedelta(hours=2, minutes=1)).replace(microsecond=0)
    t1 = t0 + timedelta(hours=2)
    n = 1200
    x = np.where(np.arange(n) % 2 == 0, rng.normal(0, 1, n), rng.normal(2, 1, n))
    store.insert(
        "predictions",
        pa.table(
            {
                "project": ["default"] * n,
                "model": ["m"] * n,
                "prediction_id": [uuid.uuid4().hex for _ in range(n)],
                "ts": pa.array(
                    [t0 + timedelta(seconds=6 * i) for i in range(n)], pa.timestamp("us", "UTC")
                ),
                "num": pa.array([[("x", float(v))] for v in x], pa.map_(pa.string(), pa.float64())),
                "tags": pa.array(
                    [[("tenant", "ab"[i % 2])] for i in range(n)], pa.map_(pa.string(), pa.string())
                ),
            }
        ),
    )
    config = ServerConfig(data_dir=str(tmp_path), detect_interval_s=0)
    with live_server(create_app(config, store=store)) as server:
        url = ["--url", server.url]
        span = ["--from", t0.isoformat(), "--to", t1.isoformat()]

        def run(*flags: str) -> dict:
            assert main(["detect", "--model", "m", "--json", *url, *flags]) == 0
            return json.loads(capsys.readouterr().out)

        assert main(["baseline", "add", str(train), "--model", "m", *url]) == 0
        capsys.readouterr()

        b = run(*span, "--segment", "tenant=b")
        assert b["n_current"] == 600 and b["dataset_drift"]
        assert b["window"]["segment"] == {"tenant": "b"}
        a = run(*span, "--segment", "tenant=a")
        assert a["n_current"] == 600 and not a["dataset_drift"]
        assert run(*span, "--segment", "tenant=nobody")["n_current"] == 0

        by_tag = run(*span, "--by-tag", "tenant")
        assert {r["window"]["segment"]["tenant"]: r["dataset_drift"] for r in by_tag["runs"]} == {
            "a": False,
            "b": True,
        }
        # Each segment's run carries the other detectors, stored under its run id and segment.
        for r in by_tag["runs"]:
            assert r["detectors"]["quality"]["rows"] == 600
            assert r["detectors"]["failures"] == []
        rows = store.query(
            "SELECT segment, value FROM detector_results WHERE detector = 'quality' "
            "AND metric = 'rows' AND run_id IN {ids:Array(String)} ORDER BY segment",
            {"ids": [r["run_id"] for r in by_tag["runs"]]},
        ).to_pylist()
        assert rows == [
            {"segment": "tenant=a", "value": 600.0},
            {"segment": "tenant=b", "value": 600.0},
        ]
        assert main(["detect", "--model", "m", *url, *span, "--by-tag", "tenant"]) == 0
        text = capsys.readouterr().out
        assert "[tenant=a]" in text and "[tenant=b]" in text and "DRIFT" in text
        assert "quality: 600 rows" in text

        latest = run("--count", "100")  # no --from: the 100 most recent of all time
        assert latest["n_current"] == 100
        assert latest["window"]["kind"] == "count" and latest["window"]["count"] == 100
        assert latest["window"]["start"] == (t0 + timedelta(seconds=6 * 1100)).isoformat()

        def stored() -> int:
            return store.query(
                "SELECT uniqExact(run_id) AS n FROM drift_results WHERE window_kind = 'time' "
                "AND segment = 'tenant=b'"
            ).to_pylist()[0]["n"]

        before = stored()
        backfilled = run(*span, "--backfill", "--every", "30m", "--segment", "tenant=b")
        assert (backfilled["stored"], backfilled["skipped"], backfilled["empty"]) == (4, 0, 0)
        starts = [w["start"] for w in backfilled["windows"]]
        assert starts == [(t0 + timedelta(minutes=30 * i)).isoformat() for i in range(4)]
        assert [w["end"] for w in backfilled["windows"]][-1] == t1.isoformat()
        assert all(w["n_current"] == 150 and w["dataset_drift"] for w in backfilled["windows"])
        assert stored() == before + 4
        assert all(w["failed_detectors"] == [] for w in backfilled["windows"])
        quality_rows = store.query(
            "SELECT run_id, value FROM detector_results WHERE detector = 'quality' "
            "AND metric = 'rows' AND run_id IN {ids:Array(String)}",
            {"ids": [w["run_id"] for w in backfilled["windows"]]},
        ).to_pylist()
        assert sorted(r["value"] for r in quality_rows) == [150.0] * 4
        again = run(*span, "--backfill", "--every", "30m", "--segment", "tenant=b")
        assert (again["stored"], again["skipped"]) == (0, 4) and stored() == before + 4

        assert main(["detect", "--model", "m", *url, *span, "--backfill", "--count", "500"]) == 0
        text = capsys.readouterr().out
        assert "3 windows stored, 0 already stored, 0 without predictions" in text
        counts = store.query(
            "SELECT window_count, uniqExact(run_id) AS runs, sum(n_current) AS n FROM "
            "drift_results WHERE window_kind = 'count' AND deciding = 1 GROUP BY window_count "
            "ORDER BY window_count"
        ).to_pylist()
        assert counts == [
            {"window_count": 100, "runs": 1, "n": 100},  # the latest 100 above
            {"window_count": 500, "runs": 3, "n": 1200},
        ]

        # The API names the field it refuses.
        api = ServerClient(server.url)
        base = {"model": "m", "start": t0.isoformat(), "end": t1.isoformat()}
        refused = [
            ({"every": "soon", "backfill": True}, "every: not a duration"),
            ({"every": "1h"}, "every: cuts [start, end) into windows for a backfill"),
            ({"every": "1h", "count": 5, "backfill": True}, "every, count: give one"),
            ({"backfill": True}, "backfill: needs every or count"),
            ({"count": 0}, "count: must be a whole number from 1"),
            ({"backfill": "yes", "count": 5}, "backfill: must be true or false"),
            ({"segment": ["tenant=a"]}, "segment: must be an object"),
            ({"segment": {"": "a"}}, "segment: a tag key is empty"),
            ({"segment": {"tenant": 1}}, "segment: tag keys and values must be strings"),
            ({"version": 2}, "version: must be a string"),
            ({"by_tag": "tenant", "segment": {"tenant": "a"}}, "by_tag: tag 'tenant' is already"),
            ({"by_tag": "tenant", "max_values": 1}, "by_tag: tag 'tenant' has more than 1 values"),
            (
                {"every": "0.5s", "backfill": True},
                "every: 0:00:00.500000 cuts the range into 14400 windows, more than 10000",
            ),
        ]
        for extra, message in refused:
            with pytest.raises(ServerError) as refusal:
                api.request("POST", "/v1/detect", json.dumps({**base, **extra}).encode())
            assert refusal.value.status == 422, extra
            assert message in str(refusal.value), (extra, str(refusal.value))


def test_the_other_detectors_print_from_their_json():
    import json
    import math

    from keelwatch._cli_detect import format_detectors
    from keelwatch.collector.server._routes_detect import _plain
    from keelwatch.detectors import (
        Calibration,
        Classification,
        Cost,
        DetectorFailure,
        FeatureQuality,
        Freshness,
        Labels,
        Operations,
        Quality,
        Regression,
        ReliabilityPoint,
        Volume,
    )

    labels = Labels(10, 4, 0.4, 30.0, None)
    found = {
        "quality": Quality(
            10,
            1,
            ("gone",),
            ("extra",),
            (FeatureQuality("x", "numeric", 9, 0.1, 0.25, 0.0, False),),
            volume=Volume(10, 10.0, 0.0, math.inf, 8, True),
            freshness=Freshness(NOW, 5.0, 60.0, False),
        ),
        "operations": (Operations("2", "canary", 10, 1, 0.1, 0.5, 1.0, 2.0, 3.0, 0, 0),),
        "labels": labels,
        "classification": Classification(4, 0.75, 1.0, 0.5, 2 / 3, None, 0.9, labels),
        "calibration": Calibration(
            4, 0.1, 0.3, 0.05, 0.2, "quantile", (ReliabilityPoint(0.5, 0.5, 4),)
        ),
        "regression": Regression(4, 1.5, 1.0, 0.2, labels),
        "cost": (
            Cost("2", "canary", "USD", 10, 8, 2, 8, 1.0, 0.004, 0.0005, 0, 0, 0, 0.0, 0.004),
            Cost("2", "stable", "", 5, 0, 5, 0, 0.0, 0.0, None, 0, 0, 0, 0.0, 0.0),
        ),
        "failures": (DetectorFailure("calibration", "Code: 241. Memory limit exceeded"),),
    }
    # As the server sends it: JSON, with the infinite z as null and times as text.
    sent = json.loads(json.dumps({name: _plain(value) for name, value in found.items()}))
    assert sent["quality"]["volume"]["z"] is None
    assert sent["quality"]["freshness"]["last_prediction"] == NOW.isoformat()
    text = format_detectors(sent)
    for expected in (
        "quality: 10 rows, 1 repeated ids, volume 10 (z n/a, ANOMALY), newest 5 s old",
        "  missing features: gone",
        "  unexpected features: extra",
        "  x                           missing 10.0%, out of range 25.0%",
        "operations 2/canary: 10 calls, 10.00% failed, 0.50/s, latency p50 1.0 p95 2.0 p99 3.0 ms",
        "labels: 4 of 10 predictions",
        "classification (n=4): accuracy 0.750, precision 1.000, recall 0.500, f1 0.667, "
        "roc auc n/a, pr auc 0.900",
        "calibration (n=4, quantile bins): ece 0.050, mce 0.200, brier 0.100, log loss 0.300",
        "regression (n=4): rmse 1.5, mae 1, mape 0.2",
        "cost 2/canary: 0.0040 USD (2 of 10 unpriced)",
        "cost 2/stable: no price in effect for its 5 predictions",
        "calibration failed: Code: 241. Memory limit exceeded",
    ):
        assert expected in text.splitlines(), (expected, text)
