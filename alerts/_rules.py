"""Alert rules: when a detector run crosses a threshold, send a webhook.

A rules file is YAML::

    rules:
      - name: retrain-on-drift
        model: "*"                 # fnmatch pattern over model names
        metric: drift_share        # drift_share | drifted_features | max_score
        op: ">="                   # >= > <= <
        threshold: 0.2
        action: retrain            # webhook event model.<action>: retrain, rollback, notify
        webhook: http://127.0.0.1:9000/hooks/retrain
        cooldown_s: 3600           # do not fire again for the same model within this time
"""

from __future__ import annotations

import fnmatch
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from keelwatch._yaml_file import check_entry, read_yaml

__all__ = ["METRICS", "Rule", "RuleError", "load_rules", "parse_rules"]

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
}
METRICS = ("drift_share", "drifted_features", "max_score")
ACTIONS = ("retrain", "rollback", "notify")
_FIELDS = {"name", "model", "metric", "op", "threshold", "action", "webhook", "cooldown_s"}


class RuleError(ValueError):
    """A rules file or rule is invalid; the message names the rule and the field."""


@dataclass(frozen=True)
class Rule:
    """One alert rule."""

    name: str
    metric: str
    threshold: float
    webhook: str
    model: str = "*"
    op: str = ">="
    action: str = "retrain"
    cooldown_s: float = 3600.0

    def matches(self, model: str) -> bool:
        return fnmatch.fnmatchcase(model, self.model)

    def fires(self, value: float) -> bool:
        return _OPS[self.op](value, self.threshold)


def _rule(index: int, item: Any) -> Rule:
    where = f"rules[{index}]"
    check_entry(where, item, _FIELDS, RuleError)
    for key in ("name", "metric", "threshold", "webhook"):
        if key not in item:
            raise RuleError(f"{where}.{key}: is required")
    name = item["name"]
    if not isinstance(name, str) or not name:
        raise RuleError(f"{where}.name: must be a non-empty string")
    where = f"rule {name!r}"
    if item["metric"] not in METRICS:
        raise RuleError(
            f"{where}.metric: must be one of {', '.join(METRICS)}, got {item['metric']!r}"
        )
    op = item.get("op", ">=")
    if op not in _OPS:
        raise RuleError(f"{where}.op: must be one of {', '.join(_OPS)}, got {op!r}")
    action = item.get("action", "retrain")
    if action not in ACTIONS:
        raise RuleError(f"{where}.action: must be one of {', '.join(ACTIONS)}, got {action!r}")
    for key in ("threshold", "cooldown_s"):
        value = item.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RuleError(f"{where}.{key}: must be a number, got {value!r}")
    if item.get("cooldown_s", 0) < 0:
        raise RuleError(f"{where}.cooldown_s: must be >= 0")
    url = item["webhook"]
    if (
        not isinstance(url, str)
        or urlsplit(url).scheme not in ("http", "https")
        or not urlsplit(url).netloc
    ):
        raise RuleError(f"{where}.webhook: must be an http(s) URL, got {url!r}")
    model = item.get("model", "*")
    if not isinstance(model, str) or not model:
        raise RuleError(f"{where}.model: must be a non-empty string pattern")
    return Rule(
        name,
        item["metric"],
        float(item["threshold"]),
        url,
        model,
        op,
        action,
        float(item.get("cooldown_s", 3600.0)),
    )


def parse_rules(document: Mapping[str, Any] | None) -> tuple[Rule, ...]:
    """Validate a parsed rules document (``{"rules": [...]}``)."""
    if document is None:
        return ()
    if not isinstance(document, dict) or not isinstance(document.get("rules", []), list):
        raise RuleError("rules: the document must be a mapping with a 'rules' list")
    rules = tuple(_rule(i, item) for i, item in enumerate(document.get("rules", [])))
    names = [r.name for r in rules]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise RuleError(f"rule {sorted(duplicates)[0]!r}.name: is used more than once")
    return rules


def load_rules(path: str | Path) -> tuple[Rule, ...]:
    """Read and validate a YAML rules file."""
    return parse_rules(read_yaml(path, "rules", RuleError))
