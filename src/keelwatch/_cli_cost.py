"""``keelwatch prices`` and ``keelwatch cost``: record prices and price a window, via the server.

keelwatch prices set --model M [--version V] [--slot S] --per-second X [--per-prediction Y]
                     [--from T] [--currency C]
keelwatch prices set-tokens --model M --prompt-per-million X --completion-per-million Y
                            [--from T] [--currency C]
keelwatch prices list [--model M]
keelwatch cost --model M --from T0 --to T1 [--version V] [--slot S]

Like every command but ``serve``, these reach the store only through the server (the embedded
store has one owner process).
"""

from __future__ import annotations

import argparse
import getpass
import json
import math
import sys
from typing import Any

from keelwatch._cli_args import parse_time
from keelwatch._client import ServerClient

__all__ = ["add_parsers", "format_cost", "format_prices", "run"]


def _price(text: str) -> float:
    """A price flag: a finite number >= 0 (argparse names the flag in its error)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return value


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", help="server URL (KEELWATCH_ENDPOINT, http://127.0.0.1:8787)")
    parser.add_argument("--json", action="store_true", help="print JSON for machines")


def add_parsers(subparsers: Any) -> None:
    """Add ``prices`` and ``cost`` to the ``keelwatch`` command's sub-parsers."""
    prices = subparsers.add_parser("prices", help="record and list compute and token prices")
    actions = prices.add_subparsers(dest="action", required=True)
    when = {
        "dest": "effective_from",
        "type": parse_time,
        "default": None,
        "help": "effective from (ISO-8601, -1d, now; default now); same time again corrects",
    }
    compute = actions.add_parser("set", help="price a deployment's compute time")
    compute.add_argument("--model", required=True)
    compute.add_argument("--version", default="", help="only this model version (default any)")
    compute.add_argument("--slot", default="", help="only this deployment slot (default any)")
    compute.add_argument("--per-second", type=_price, required=True, help="per second of latency")
    compute.add_argument("--per-prediction", type=_price, default=0.0, help="per call (default 0)")
    compute.add_argument("--from", **when)
    compute.add_argument("--currency", default="USD", help="ISO 4217 code (default USD)")
    tokens = actions.add_parser("set-tokens", help="price an LLM's prompt and completion tokens")
    tokens.add_argument("--model", required=True)
    tokens.add_argument("--prompt-per-million", type=_price, required=True)
    tokens.add_argument("--completion-per-million", type=_price, required=True)
    tokens.add_argument("--from", **when)
    tokens.add_argument("--currency", default="USD", help="ISO 4217 code (default USD)")
    listing = actions.add_parser("list", help="list the current prices")
    listing.add_argument("--model", default="")
    for each in (compute, tokens, listing):
        _common(each)

    cost = subparsers.add_parser("cost", help="what a model's predictions cost over a window")
    cost.add_argument("--model", required=True)
    cost.add_argument("--from", dest="start", type=parse_time, default="-1h")
    cost.add_argument("--to", dest="end", type=parse_time, default="now")
    cost.add_argument("--version", default="", help="only this model version")
    cost.add_argument("--slot", default="", help="only this deployment slot")
    _common(cost)


def _user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name (containers without a passwd entry)
        return ""


def _set(args: argparse.Namespace, client: ServerClient) -> Any:
    body: dict[str, Any] = {"model": args.model, "currency": args.currency}
    if args.action == "set":
        body |= {
            "kind": "compute",
            "version": args.version,
            "slot": args.slot,
            "per_second": args.per_second,
            "per_prediction": args.per_prediction,
        }
    else:
        body |= {
            "kind": "tokens",
            "prompt_per_million": args.prompt_per_million,
            "completion_per_million": args.completion_per_million,
        }
    if args.effective_from is not None:
        body["effective_from"] = args.effective_from.isoformat()
    body["recorded_by"] = _user()
    return client.request("POST", "/v1/prices", json.dumps(body).encode())


def _table(header: list[str], rows: list[list[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return [
        (indent + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True))).rstrip()
        for row in [header, *rows]
    ]


def format_prices(prices: dict[str, Any]) -> str:
    """``GET /v1/prices`` as readable tables (``*`` is any version or slot)."""
    lines = []
    if prices["compute"]:
        lines.append("compute prices")
        lines += _table(
            ["model", "version", "slot", "effective from", "per second", "per call", "currency"],
            [
                [
                    p["model"],
                    p["version"] or "*",
                    p["slot"] or "*",
                    p["effective_from"],
                    f"{p['per_second']:.6g}",
                    f"{p['per_prediction']:.6g}",
                    p["currency"],
                ]
                for p in prices["compute"]
            ],
        )
    if prices["tokens"]:
        lines.append("token prices")
        lines += _table(
            ["model", "effective from", "prompt / 1M", "completion / 1M", "currency"],
            [
                [
                    p["model"],
                    p["effective_from"],
                    f"{p['prompt_per_million']:.6g}",
                    f"{p['completion_per_million']:.6g}",
                    p["currency"],
                ]
                for p in prices["tokens"]
            ],
        )
    return "\n".join(lines) or "no prices recorded"


def format_cost(result: dict[str, Any]) -> str:
    """A window's cost (``/v1/cost``) as a table, one line per (version, slot) and a total."""
    window = result["window"]
    title = f"{result['model']}: cost from {window['start']} to {window['end']}"
    costs = result["costs"]
    if not costs:
        return title + "\n  no predictions"
    rows = [
        [
            c["version"] or "-",
            c["slot"] or "-",
            str(c["predictions"]),
            str(c["unpriced"]),
            f"{c['compute_cost']:.6g}",
            f"{c['token_cost']:.6g}",
            f"{c['total_cost']:.6g}",
            c["currency"] or "-",
        ]
        for c in costs
    ]
    currencies = {c["currency"] for c in costs if c["currency"]}
    if len(costs) > 1 and len(currencies) <= 1:  # a sum over currencies would mean nothing
        rows.append(
            [
                "all",
                "",
                str(sum(c["predictions"] for c in costs)),
                str(sum(c["unpriced"] for c in costs)),
                f"{sum(c['compute_cost'] for c in costs):.6g}",
                f"{sum(c['token_cost'] for c in costs):.6g}",
                f"{sum(c['total_cost'] for c in costs):.6g}",
                next(iter(currencies), "-"),
            ]
        )
    header = ["version", "slot", "calls", "unpriced", "compute", "tokens", "total", "currency"]
    return "\n".join([title, *_table(header, rows)])


def run(args: argparse.Namespace, client: ServerClient) -> int:
    """Run ``prices ...`` or ``cost``; returns the exit status (2 for a bad window)."""
    if args.command == "cost":
        if args.end <= args.start:
            print("keelwatch: --to must be after --from", file=sys.stderr)
            return 2
        # GET, so that a read key may ask (the server grants POSTs under /v1/ to admins only).
        window = {
            "model": args.model,
            "start": args.start.isoformat(),
            "end": args.end.isoformat(),
            "version": args.version,
            "slot": args.slot,
        }
        result = client.request("GET", "/v1/cost", params=window)
        print(json.dumps(result, indent=2) if args.json else format_cost(result))
        return 0
    if args.action == "list":
        prices = client.request(
            "GET", "/v1/prices", params={"model": args.model} if args.model else None
        )
        print(json.dumps(prices, indent=2) if args.json else format_prices(prices))
        return 0
    price = _set(args, client)
    if args.json:
        print(json.dumps(price, indent=2))
    else:
        listed = {"compute": [], "tokens": []} | {price["kind"]: [price]}
        print(format_prices(listed).replace(" prices", " price recorded", 1))
    return 0
