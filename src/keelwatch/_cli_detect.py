"""``keelwatch detect``: its flags, the request to the server, and how results are printed."""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from typing import Any

from keelwatch._cli_args import parse_duration, parse_tag, parse_time, positive, print_json
from keelwatch._client import ServerClient

__all__ = ["add_arguments", "format_backfill", "format_run", "run"]


def add_arguments(target: argparse.ArgumentParser) -> None:
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
        "--max-values", type=positive, help="most values --by-tag runs (server default 50)"
    )
    size = target.add_mutually_exclusive_group()
    size.add_argument(
        "--every", type=parse_duration, help="with --backfill: windows of this length (1h)"
    )
    size.add_argument(
        "--count",
        type=positive,
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
            if w.get("failed_detectors"):
                detail += f"  (failed: {', '.join(w['failed_detectors'])})"
        lines.append(
            f"  {w['start']} .. {w['end']}  {segment + '  ' if segment else ''}"
            f"{w['status']:<8}{detail}".rstrip()
        )
    return "\n".join(lines)


def _num(value: float | None, spec: str = ".3f") -> str:
    return "n/a" if value is None else format(value, spec)


def _quality_lines(q: dict[str, Any]) -> list[str]:
    volume, fresh = q.get("volume"), q.get("freshness")
    head = f"quality: {q['rows']} rows, {q['duplicate_ids']} repeated ids"
    if volume:
        head += f", volume {volume['current']} (z {_num(volume['z'], '.2f')}"
        head += ", ANOMALY)" if volume["anomaly"] else ")"
    if fresh:
        head += f", newest {_num(fresh['staleness_s'], '.0f')} s old"
        head += " STALE" if fresh["stale"] else ""
    lines = [head]
    for label, names in (
        ("missing features", q["missing_features"]),
        ("unexpected features", q["unexpected_features"]),
        ("wrong types", q["wrong_types"]),
    ):
        if names:
            lines.append(f"  {label}: {', '.join(names)}")
    for f in q["features"]:
        flags = [
            f"{label} {share:.1%}"
            for label, share in (
                ("missing", f["missing_rate"]),
                ("out of range", f["out_of_range_share"]),
                ("unseen", f["unseen_share"]),
            )
            if share
        ]
        flags += ["constant"] if f["constant"] else []
        if flags:
            lines.append(f"  {f['feature']:<28}{', '.join(flags)}")
    return lines


def format_detectors(found: dict[str, Any]) -> str:
    """The detectors beside drift of one window: quality, operations, outcomes, cost."""
    lines = _quality_lines(found["quality"]) if found.get("quality") else []
    for ops in found.get("operations") or []:
        lines.append(
            f"operations {ops['version'] or '-'}/{ops['slot'] or '-'}: {ops['calls']} calls, "
            f"{ops['failure_rate']:.2%} failed, {ops['throughput_per_s']:.2f}/s, latency p50 "
            f"{_num(ops['latency_p50_ms'], '.1f')} p95 {_num(ops['latency_p95_ms'], '.1f')} "
            f"p99 {_num(ops['latency_p99_ms'], '.1f')} ms"
        )
    labels = found.get("labels")
    if labels:
        lines.append(f"labels: {labels['labelled']} of {labels['predictions']} predictions")
    c = found.get("classification")
    if c:
        lines.append(
            f"classification (n={c['n']}): accuracy {_num(c['accuracy'])}, precision "
            f"{_num(c['precision'])}, recall {_num(c['recall'])}, f1 {_num(c['f1'])}, roc auc "
            f"{_num(c['roc_auc'])}, pr auc {_num(c['pr_auc'])}"
        )
    cal = found.get("calibration")
    if cal:
        lines.append(
            f"calibration (n={cal['n']}, {cal['strategy']} bins): ece {_num(cal['ece'])}, mce "
            f"{_num(cal['mce'])}, brier {_num(cal['brier'])}, log loss {_num(cal['log_loss'])}"
        )
    r = found.get("regression")
    if r:
        lines.append(
            f"regression (n={r['n']}): rmse {_num(r['rmse'], '.4g')}, mae {_num(r['mae'], '.4g')}"
            f", mape {_num(r['mape'], '.4g')}"
        )
    for cost in found.get("cost") or []:
        where = f"cost {cost['version'] or '-'}/{cost['slot'] or '-'}"
        if not cost["priced"]:
            lines.append(f"{where}: no price in effect for its {cost['predictions']} predictions")
            continue
        lines.append(
            f"{where}: {cost['total_cost']:.4f} {cost['currency']} ({cost['unpriced']} of "
            f"{cost['predictions']} unpriced)"
        )
    for failure in found.get("failures") or []:
        lines.append(f"{failure['detector']} failed: {failure['error']}")
    return "\n".join(lines)


def _print_run(run: dict[str, Any]) -> None:
    segment = run["window"].get("segment") or {}
    if segment:
        print("[" + ",".join(f"{k}={v}" for k, v in segment.items()) + "]")
    print(format_run(run))
    if run.get("detectors"):
        print(format_detectors(run["detectors"]))
    for alert in run.get("alerts", []):
        print(
            f"  alert {alert['rule']}: {alert['summary']} -> {alert['webhook']} "
            f"(HTTP {alert['status']})"
        )


def run(args: argparse.Namespace, client: ServerClient) -> int:
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
        print_json(result)
    elif args.backfill:
        print(format_backfill(result))
    else:
        for run in result["runs"] if args.by_tag else [result]:
            _print_run(run)
    return 0
