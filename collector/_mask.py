"""Masking: what never leaves the process. Applied on the sender thread, before encoding.

``allow``: if given, only these feature names are kept. ``deny``: names removed wherever they
occur as a feature or a tag; ``output.<key>`` (e.g. ``output.text``) blanks an output field and
``features.<name>`` / ``tags.<name>`` are explicit forms. ``mask``: a callable that gets the whole
record (a dict) and returns it changed, or ``None`` to drop it.
"""

from __future__ import annotations

from typing import Any

from ._config import MaskFunc


def apply(
    record: dict[str, Any],
    allow: frozenset[str] | None,
    deny: frozenset[str],
    func: MaskFunc | None,
) -> dict[str, Any] | None:
    """``record`` with the masked fields removed; ``None`` if the callable dropped it."""
    features: dict[str, Any] = record["features"]
    if allow is not None:
        record["features"] = features = {k: v for k, v in features.items() if k in allow}
    if deny:
        tags: dict[str, Any] = record.get("tags") or {}
        output: dict[str, Any] | None = record.get("output")
        for name in deny:
            section, _, key = name.partition(".")
            if not key:
                features.pop(name, None)
                tags.pop(name, None)
            elif section == "features":
                features.pop(key, None)
            elif section == "tags":
                tags.pop(key, None)
            elif section == "output" and output is not None and key in output:
                output[key] = None
    if func is not None:
        return func(record)
    return record
