"""The ``keelwatch`` command line.

keelwatch demo                       monitor a model end to end on the embedded store
keelwatch serve                      the collector server (owns the embedded store)
keelwatch baseline add|list|show     register and inspect baselines
keelwatch detect                     run the detectors on a window now, or backfill history
keelwatch keys create|list|revoke    API keys with roles (ingest, read, admin)
keelwatch dashboard                  open the Streamlit dashboards
keelwatch check                      validate rule and drift settings files
"""

from __future__ import annotations

import argparse
import getpass
import os
import subprocess
import sys
from pathlib import Path

from keelwatch import _cli_check, _cli_cost, _cli_detect
from keelwatch._cli_args import (
    join_relative_times,
    parse_duration,
    parse_tag,
    parse_time,
    print_json,
)
from keelwatch._client import ServerClient, ServerError

__all__ = ["main", "parse_duration", "parse_tag", "parse_time"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="keelwatch", description="Monitor ML and LLM models in production."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="monitor a model end to end on the embedded store")
    demo.add_argument(
        "--data", default="./keelwatch-demo-data", help="store directory (wiped first)"
    )
    demo.add_argument("--port", type=int, default=0, help="server port (default: a free one)")
    demo.add_argument("--requests", type=int, default=1500, help="predictions per traffic phase")

    serve = sub.add_parser("serve", help="run the collector server")
    serve.add_argument("--data", help="embedded store directory (KEELWATCH_DATA, ./keelwatch-data)")
    serve.add_argument(
        "--clickhouse-url", help="use a ClickHouse server (KEELWATCH_CLICKHOUSE_URL)"
    )
    serve.add_argument("--host", help="bind address (KEELWATCH_HOST, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (KEELWATCH_PORT, 8787)")
    serve.add_argument("--rules", type=Path, help="alert rules YAML file")
    serve.add_argument(
        "--drift-config", type=Path, help="drift methods and thresholds per model, YAML file"
    )
    serve.add_argument(
        "--detect-interval", type=float, help="seconds between detector runs (0: off)"
    )
    serve.add_argument("--detect-window", type=float, help="seconds of traffic each run looks at")
    serve.add_argument(
        "--retention-days", type=int, help="days of raw data kept (KEELWATCH_RETENTION_DAYS, 90)"
    )

    sub.add_parser("keys", help="create, list and revoke API keys", add_help=False)

    for name in ("baseline", "detect"):
        target = sub.add_parser(
            name,
            help=(
                "register and inspect baselines"
                if name == "baseline"
                else "run the detectors on a window now"
            ),
        )
        if name == "baseline":
            actions = target.add_subparsers(dest="action", required=True)
            add = actions.add_parser("add", help="register a baseline from a CSV or parquet file")
            add.add_argument("file", type=Path)
            add.add_argument("--model", required=True)
            lst = actions.add_parser("list", help="list baselines")
            lst.add_argument("--model", default="")
            show = actions.add_parser("show", help="show a model's newest baseline profile")
            show.add_argument("--model", required=True)
            targets: tuple[argparse.ArgumentParser, ...] = (add, lst, show)
        else:
            _cli_detect.add_arguments(target)
            targets = (target,)
        for each in targets:
            each.add_argument(
                "--url", help="server URL (KEELWATCH_ENDPOINT, http://127.0.0.1:8787)"
            )
            each.add_argument("--json", action="store_true", help="print JSON for machines")

    _cli_check.add_parser(sub)

    dash = sub.add_parser("dashboard", help="open the Streamlit dashboards")
    dash.add_argument("--url", help="server URL (KEELWATCH_ENDPOINT, http://127.0.0.1:8787)")
    dash.add_argument("--port", type=int, default=8501)
    _cli_cost.add_parsers(sub)
    return parser


def _serve(args: argparse.Namespace) -> int:
    from keelwatch.alerts import load_rules
    from keelwatch.collector.server import ServerConfig, serve
    from keelwatch.detectors import load_drift_settings

    rules = load_rules(args.rules) if args.rules else ()
    drift = load_drift_settings(args.drift_config) if args.drift_config else None
    config = ServerConfig.from_env(
        data_dir=args.data,
        clickhouse_url=args.clickhouse_url,
        host=args.host,
        port=args.port,
        detect_interval_s=args.detect_interval,
        detect_window_s=args.detect_window,
        retention_days=args.retention_days,
        rules=rules,
        drift=drift,
    )
    print(
        f"keelwatch serving on http://{config.host}:{config.port} "
        f"(store: {config.clickhouse_url or Path(config.data_dir).resolve()})",
        flush=True,
    )
    serve(config)
    return 0


def _baseline(args: argparse.Namespace, client: ServerClient) -> int:
    if args.action == "add":
        fmt = "parquet" if args.file.suffix.lower() in (".parquet", ".pq") else "csv"
        if not args.file.is_file():
            print(f"keelwatch: baseline file not found: {args.file}", file=sys.stderr)
            return 2
        result = client.add_baseline(args.model, args.file.read_bytes(), fmt, getpass.getuser())
        if args.json:
            print_json(result)
        else:
            print(
                f"baseline v{result['version']} for {args.model}: {result['rows']} rows, "
                f"{len(result['features'])} features ({result['baseline_id']})"
            )
        return 0
    rows = client.baselines(args.model)
    if args.action == "show":
        rows = rows[:1]
        if not rows:
            print(f"keelwatch: model {args.model!r} has no baseline", file=sys.stderr)
            return 1
    if args.json:
        print_json(rows)
        return 0
    for b in rows:
        print(
            f"{b['model']}  v{b['version']}  {b['rows']} rows  {b['created_at']}  "
            f"{b['source']}  sha256:{b['content_hash'][:12]}"
        )
        if args.action == "show":
            for f in b["features"]:
                detail = (
                    f"min {f['min']:.4g} max {f['max']:.4g} mean {f['mean']:.4g} std {f['std']:.4g}"
                    if f["kind"] == "numeric" and f["count"]
                    else ", ".join(f"{k}: {v}" for k, v in list(f["categories"].items())[:8])
                )
                print(f"  {f['name']:<28} {f['kind']:<12} nulls {f['nulls']:<6} {detail}")
    return 0


def _dashboard(args: argparse.Namespace) -> int:
    from keelwatch.dashboards import APP as app

    env = dict(os.environ)
    if args.url:
        env["KEELWATCH_ENDPOINT"] = args.url
    return subprocess.call(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(app),
            "--server.port",
            str(args.port),
            "--server.headless",
            "true",
        ],
        env=env,
    )


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["keys"]:
        from keelwatch.collector.server import keys_main

        return keys_main(argv[1:])
    args = _parser().parse_args(join_relative_times(argv))
    try:
        if args.command == "demo":
            from keelwatch._demo import run_demo

            return run_demo(Path(args.data), port=args.port, requests=args.requests)
        if args.command == "serve":
            return _serve(args)
        if args.command == "dashboard":
            return _dashboard(args)
        if args.command == "check":
            return _cli_check.run(args)
        client = ServerClient(args.url)
        if args.command in ("prices", "cost"):
            return _cli_cost.run(args, client)
        if args.command == "baseline":
            return _baseline(args, client)
        return _cli_detect.run(args, client)
    except ServerError as exc:
        print(f"keelwatch: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"keelwatch: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
