"""Argument types of the ``keelwatch`` command line (times, durations, tags, counts) and its
``--json`` output."""

from __future__ import annotations

import argparse
import json
import re
from datetime import datetime, timedelta, timezone

__all__ = [
    "join_relative_times",
    "parse_duration",
    "parse_tag",
    "parse_time",
    "positive",
    "print_json",
]

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


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"not a whole number >= 1: {text!r}")
    return value


def join_relative_times(argv: list[str]) -> list[str]:
    # argparse reads "-15m" after --from as an option; keep it as the flag's value.
    out: list[str] = []
    for arg in argv:
        if out and out[-1] in ("--from", "--to") and _RELATIVE.match(arg):
            out[-1] = f"{out[-1]}={arg}"
        else:
            out.append(arg)
    return out


def print_json(value: object) -> None:
    """``value`` as indented JSON on standard output (times and other objects as strings)."""
    print(json.dumps(value, indent=2, default=str))
