"""``keelwatch check``: validate the server's rule and drift settings files without serving.

keelwatch check [--rules rules.yaml] [--drift-config drift.yaml] [--model M ...] [--json]

For a CI job or a deploy step: the files are read and checked exactly as ``keelwatch serve``
reads them (exit 2 naming the entry and field of the first problem), and ``--model`` shows
which drift settings entry each model would run with.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path
from typing import Any

from keelwatch._cli_args import print_json

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    check = sub.add_parser("check", help="validate rule and drift settings files")
    check.add_argument("--rules", type=Path, help="alert rules YAML file")
    check.add_argument("--drift-config", type=Path, help="drift settings YAML file")
    check.add_argument(
        "--model", action="append", default=[], help="show the drift entry this model runs with"
    )
    check.add_argument("--json", action="store_true", help="print JSON for machines")


def run(args: argparse.Namespace) -> int:
    """Check the files; 0 when every given file is valid."""
    from keelwatch.alerts import load_rules
    from keelwatch.detectors import DriftSettings, load_drift_settings

    if not args.rules and not args.drift_config:
        raise ValueError("check: give --rules and/or --drift-config")
    rules = load_rules(args.rules) if args.rules else ()
    drift = load_drift_settings(args.drift_config) if args.drift_config else DriftSettings()
    entries: list[dict[str, Any]] = [
        {
            "model": e.pattern,
            "preset": e.preset,
            "written": e.written(),
            "calibrate": asdict(e.calibrate) if e.calibrate else None,
        }
        for e in drift.models
    ]
    models = {}
    for model in args.model:
        found = drift.matching(model)
        models[model] = found.pattern if found else None
    if args.json:
        print_json({"rules": [r.name for r in rules], "drift": entries, "models": models})
        return 0
    if args.rules:
        names = ", ".join(r.name for r in rules)
        plural = "" if len(rules) == 1 else "s"
        print(f"{args.rules}: {len(rules)} rule{plural}" + (f" ({names})" if names else ""))
    if args.drift_config:
        print(f"{args.drift_config}: {len(entries)} entries, the first that matches applies")
        for item in entries:
            what = [f"preset {item['preset']}"]
            what += [f"{k}={v}" for k, v in item["written"].items()]
            if item["calibrate"]:
                calibrate = ", ".join(f"{k}={v}" for k, v in item["calibrate"].items())
                what.append(f"calibrate {calibrate}")
            print(f"  {item['model']:<20} {'; '.join(what)}")
    for model, pattern in models.items():
        print(f"model {model}: " + (f"entry {pattern!r}" if pattern else "no entry: DriftConfig()"))
    return 0
