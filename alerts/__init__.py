"""Alerts: rules over detector results that send signed retraining and rollback webhooks."""

from __future__ import annotations

from ._engine import Alert, evaluate_rules, metric_value
from ._rules import METRICS, Rule, RuleError, load_rules, parse_rules
from ._webhook import Delivery, WebhookSender, sign, verify

__all__ = [
    "METRICS",
    "Alert",
    "Delivery",
    "Rule",
    "RuleError",
    "WebhookSender",
    "evaluate_rules",
    "load_rules",
    "metric_value",
    "parse_rules",
    "sign",
    "verify",
]
