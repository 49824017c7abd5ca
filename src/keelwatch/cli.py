"""The ``keelwatch`` command line.

keelwatch demo                       monitor a model end to end on the embedded store
keelwatch serve                      the collector server (owns the embedded store)
keelwatch baseline add|list|show     register and inspect baselines
keelwatch detect                     run the detectors on a window now, or backfill history
keelwatch keys create|list|revoke    API keys with roles (ingest, read, admin)
keelwatch dashboard                  open the Streamlit dashboards
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from keelwatch import _cli_cost
from keelwatch._client import ServerClient, ServerError

__all__ = ["main", "parse_duration", "parse_tag", "parse_time"]

_RELATIVE = re.compile(r"^-(\d+(?:\.\d+)?)([smhd])$")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_time(text: str, now: datetime | None = None) -> datetime:
    """``now``, a relative time (``-15m``, ``-2h``, ``-1d``) or ISO-8601 (UTC if naive)."""
    now = now or datetime.now(timezone.utc)
    text = text.strip()
    if text == "now":
        return now
    match = _RELATIVE.match(text)
    if match:
        return now - timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a time: {text!r} (use now, -15m, -2h, -1d or ISO-8601)"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def parse_duration(text: str) -> str:
    """A window length such as ``30s``, ``15m``, ``1h`` or ``1d`` (checked, sent as given)."""
    match = _DURATION.match(text.strip())
    if not match or float(match.group(1)) <= 0:
        raise argparse.ArgumentTypeError(
            f"not a duration: {text!r} (use a positive number with s, m, h or d: 15m, 1h, 1d)"
        )
    return text.strip()


def parse_tag(text: str) -> tuple[str, str]:
    """A ``key=value`` tag filter (the value may itself contain ``=``)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"not key=value: {text!r} (e.g. --segment tenant=acme)")
    return key.strip(), value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"not a whole number >= 1: {text!r}")
    return value


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
            _detect_arguments(target)
            targets = (target,)
        for each in targets:
            each.add_argument(
                "--url", help="server URL (KEELWATCH_ENDPOINT, http://127.0.0.1:8787)"
            )
            each.add_argument("--json", action="store_true", help="print JSON for machines")

    dash = sub.add_parser("dashboard", help="open the Streamlit dashboards")
    dash.add_argument("--url", help="server URL (KEELWATCH_ENDPOINT, http://127.0.0.1:8787)")
    dash.add_argument("--port", type=int, default=8501)
    _cli_cost.add_parsers(sub)
    return parser


def _detect_arguments(target: argparse.ArgumentParser) -> None:
    target.add_argument("--model", required=True)
    target.add_argument(
        "--from",
        dest="start",
        type=parse_time,
        help="window start (default -1h; with --count and no --backfill: no lower bound)",
    )
    target.add_argument("--to", dest="end", type=parse_time, default="now")
    target.add_argument("--version", default="", help="only this model version")
    target.add_argument("--slot", default="", help="only this deployment slot")
    target.add_argument(
        "--segment",
        action="append",
        type=parse_tag,
        default=[],
        metavar="KEY=VALUE",
        help="only predictions with this tag value (repeatable: all must match)",
    )
    target.add_argument("--by-tag", default="", metavar="KEY", help="one run per value of a tag")
    target.add_argument(
        "--max-values", type=_positive, help="most values --by-tag runs (server default 50)"
    )
    size = target.add_mutually_exclusive_group()
    size.add_argument(
        "--every", type=parse_duration, help="with --backfill: windows of this length (1h)"
    )
    size.add_argument(
        "--count",
        type=_positive,
        help="the N most recent predictions; with --backfill, consecutive windows of N",
    )
    target.add_argument(
        "--backfill",
        action="store_true",
        help="run every window of --from..--to and store the results (no alerts)",
    )
    target.add_argument(
        "--replace", action="store_true", help="with --backfill: recompute stored windows"
    )


def _serve(args: argparse.Namespace) -> int:
    from keelwatch.alerts import load_rules
    from keelwatch.collector.server import ServerConfig, serve

    rules = load_rules(args.rules) if args.rules else ()
    config = ServerConfig.from_env(
        data_dir=args.data,
        clickhouse_url=args.clickhouse_url,
        host=args.host,
        port=args.port,
        detect_interval_s=args.detect_interval,
        detect_window_s=args.detect_window,
        retention_days=args.retention_days,
        rules=rules,
    )
    print(
        f"keelwatch serving on http://{config.host}:{config.port} "
        f"(store: {config.clickhouse_url or Path(config.data_dir).resolve()})",
        flush=True,
    )
    serve(config)
    return 0


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))


def _baseline(args: argparse.Namespace, client: ServerClient) -> int:
    if args.action == "add":
        fmt = "parquet" if args.file.suffix.lower() in (".parquet", ".pq") else "csv"
        if not args.file.is_file():
            print(f"keelwatch: baseline file not found: {args.file}", file=sys.stderr)
            return 2
        result = client.add_baseline(args.model, args.file.read_bytes(), fmt, getpass.getuser())
        if args.json:
            _print_json(result)
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
        _print_json(rows)
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


def format_run(run: dict[str, Any]) -> str:
    """A drift run as a readable table (deciding method per feature, other methods beside)."""
    lines = [
        f"{run['model']}: {run['n_current']} predictions from {run['window']['start']} "
        f"to {run['window']['end']}, drift share {run['drift_share']:.2f}"
    ]
    by_feature: dict[str, list[dict[str, Any]]] = {}
    for r in run["results"]:
        by_feature.setdefault(r["feature"], []).append(r)
    for feature, results in by_feature.items():
        deciding = next(r for r in results if r["deciding"])
        flag = "DRIFT" if deciding["drifted"] else "ok"
        scores = "  ".join(
            f"{r['method']}={'n/a' if r['score'] is None else format(r['score'], '.4f')}"
            + (f" (p={r['p_value']:.3g})" if r["p_value"] is not None else "")
            for r in results
        )
        lines.append(f"  {flag:<6}{feature:<28}{scores}")
    return "\n".join(lines)


def _detect_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with a ``detect`` command line, if anything."""
    if args.every and not args.backfill:
        return "--every cuts --from..--to into windows: add --backfill"
    if args.replace and not args.backfill:
        return "--replace only applies with --backfill"
    if args.backfill and not (args.every or args.count):
        return "--backfill needs --every or --count to cut the range into windows"
    keys = [key for key, _ in args.segment]
    if len(set(keys)) < len(keys):
        return "--segment: a tag is given twice"
    if args.by_tag and args.by_tag in keys:
        return f"--by-tag: tag {args.by_tag!r} is already fixed by --segment"
    if args.max_values and not args.by_tag:
        return "--max-values only applies with --by-tag"
    if args.start is not None and args.end <= args.start:
        return "--to must be after --from"
    return None


def format_backfill(result: dict[str, Any]) -> str:
    """A backfill's windows, one line each, and what was stored."""
    lines = [
        f"{result['model']}: {result['stored']} windows stored, {result['skipped']} already "
        f"stored, {result['empty']} without predictions"
    ]
    for w in result["windows"]:
        segment = ",".join(f"{k}={v}" for k, v in w["segment"].items())
        detail = ""
        if w["status"] == "stored":
            flag = "DRIFT" if w["dataset_drift"] else "ok"
            drifted = ", ".join(w["drifted"])
            detail = f"{flag:<6}n={w['n_current']:<8} share {w['drift_share']:.2f}  {drifted}"
        lines.append(
            f"  {w['start']} .. {w['end']}  {segment + '  ' if segment else ''}"
            f"{w['status']:<8}{detail}".rstrip()
        )
    return "\n".join(lines)


def _print_run(run: dict[str, Any]) -> None:
    segment = run["window"].get("segment") or {}
    if segment:
        print("[" + ",".join(f"{k}={v}" for k, v in segment.items()) + "]")
    print(format_run(run))
    for alert in run.get("alerts", []):
        print(
            f"  alert {alert['rule']}: {alert['summary']} -> {alert['webhook']} "
            f"(HTTP {alert['status']})"
        )


def _detect(args: argparse.Namespace, client: ServerClient) -> int:
    problem = _detect_problem(args)
    if problem:
        print(f"keelwatch: {problem}", file=sys.stderr)
        return 2
    start = args.start
    if start is None and not (args.count and not args.backfill):
        start = args.end - timedelta(hours=1)
    result = client.detect(
        args.model,
        start.isoformat() if start is not None else None,
        args.end.isoformat(),
        args.version,
        args.slot,
        segment=dict(args.segment),
        by_tag=args.by_tag,
        max_values=args.max_values,
        every=args.every,
        count=args.count or 0,
        backfill=args.backfill,
        replace=args.replace,
    )
    if args.json:
        _print_json(result)
    elif args.backfill:
        print(format_backfill(result))
    else:
        for run in result["runs"] if args.by_tag else [result]:
            _print_run(run)
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


def _join_relative_times(argv: list[str]) -> list[str]:
    # argparse reads "-15m" after --from as an option; keep it as the flag's value.
    out: list[str] = []
    for arg in argv:
        if out and out[-1] in ("--from", "--to") and _RELATIVE.match(arg):
            out[-1] = f"{out[-1]}={arg}"
        else:
            out.append(arg)
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["keys"]:
        from keelwatch.collector.server import keys_main

        return keys_main(argv[1:])
    args = _parser().parse_args(_join_relative_times(argv))
    try:
        if args.command == "demo":
            from keelwatch._demo import run_demo

            return run_demo(Path(args.data), port=args.port, requests=args.requests)
        if args.command == "serve":
            return _serve(args)
        if args.command == "dashboard":
            return _dashboard(args)
        client = ServerClient(args.url)
        if args.command in ("prices", "cost"):
            return _cli_cost.run(args, client)
        return _baseline(args, client) if args.command == "baseline" else _detect(args, client)
    except ServerError as exc:
        print(f"keelwatch: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"keelwatch: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
