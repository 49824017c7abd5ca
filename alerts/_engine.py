"""Evaluate alert rules over a drift run, send the webhooks, and record what happened."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

import pyarrow as pa

from keelwatch.detectors import DriftRun, format_segment
from keelwatch.store import Store

from ._rules import Rule
from ._webhook import Delivery, WebhookSender

__all__ = ["Alert", "evaluate_rules", "metric_value"]


@dataclass(frozen=True)
class Alert:
    """A rule that fired on a run, and how its webhook delivery went."""

    alert_id: str
    rule: str
    model: str
    action: str
    metric: str
    value: float
    threshold: float
    summary: str
    delivery: Delivery


def metric_value(run: DriftRun, metric: str) -> float:
    """The run-level number a rule compares against its threshold."""
    if metric == "drift_share":
        return run.drift_share
    if metric == "drifted_features":
        return float(len(run.drifted_features))
    if metric == "max_score":
        return max((r.score for r in run.deciding), default=0.0)
    raise ValueError(f"unknown metric {metric!r}")


def _last_fired(store: Store, run: DriftRun, rule: str) -> float | None:
    """When ``rule`` last fired for the run's model and scope (version, slot, tag segment).

    The cooldown is per scope: one tenant's alert must not silence another's. The scope is
    read from the stored payload (alerts from before segments have none: the whole model).
    """
    w = run.window
    rows = store.query(
        "SELECT toUnixTimestamp64Milli(max(created_at)) AS t, count() AS n FROM alerts "
        "WHERE project = {p:String} AND model = {m:String} AND rule = {r:String} "
        "AND JSONExtractString(payload, 'version') = {ver:String} "
        "AND JSONExtractString(payload, 'slot') = {slot:String} "
        "AND JSONExtractString(payload, 'segment') = {seg:String}",
        {
            "p": w.project,
            "m": run.model,
            "r": rule,
            "ver": w.version,
            "slot": w.slot,
            "seg": format_segment(w.segment),
        },
    ).to_pylist()
    return rows[0]["t"] / 1000.0 if rows and rows[0]["n"] else None


def _record(store: Store, project: str, alert: Alert, payload: dict[str, object]) -> None:
    now = datetime.now(timezone.utc)
    store.insert(
        "alerts",
        pa.table(
            {
                "project": [project],
                "model": [alert.model],
                "alert_id": [alert.alert_id],
                "rule": [alert.rule],
                "action": [alert.action],
                "summary": [alert.summary],
                "payload": [json.dumps(payload, default=str)],
                "target": [alert.delivery.url],
                "response_status": pa.array([alert.delivery.status], pa.int32()),
                "delivered": pa.array([int(alert.delivery.delivered)], pa.uint8()),
                "created_at": pa.array([now], pa.timestamp("ms", tz="UTC")),
            }
        ),
    )
    store.insert(
        "audit_log",
        pa.table(
            {
                "actor": ["keelwatch"],
                "action": [f"alert.{alert.action}"],
                "target": [f"{alert.model}/{alert.rule}"],
                "detail": [
                    json.dumps(
                        {
                            "alert_id": alert.alert_id,
                            "msg_id": alert.delivery.msg_id,
                            "status": alert.delivery.status,
                        }
                    )
                ],
            }
        ),
    )


def evaluate_rules(
    store: Store,
    run: DriftRun,
    rules: Sequence[Rule],
    sender: WebhookSender,
    now: Callable[[], float] = time.time,
) -> list[Alert]:
    """Fire every rule that matches ``run`` and is outside its cooldown."""
    alerts = []
    project = run.window.project
    for rule in rules:
        if not rule.matches(run.model):
            continue
        value = metric_value(run, rule.metric)
        if not rule.fires(value):
            continue
        last = _last_fired(store, run, rule.name)
        if last is not None and now() - last < rule.cooldown_s:
            continue
        drifted = [
            {"feature": r.feature, "method": r.method, "score": r.score, "threshold": r.threshold}
            for r in run.drifted_features
        ]
        segment = format_segment(run.window.segment)
        scope = f" [{segment}]" if segment else ""
        summary = (
            f"{run.model}{scope}: {rule.metric} = {value:.3g} {rule.op} {rule.threshold:g} "
            f"({len(drifted)} of {len(run.deciding)} features drifted)"
        )
        payload: dict[str, object] = {
            "model": run.model,
            "rule": rule.name,
            "action": rule.action,
            "summary": summary,
            "metric": rule.metric,
            "value": value,
            "threshold": rule.threshold,
            "window": {"start": run.window.start.isoformat(), "end": run.window.end.isoformat()},
            "version": run.window.version,
            "slot": run.window.slot,
            "segment": segment,
            "baseline_id": run.baseline_id,
            "run_id": run.run_id,
            "drifted_features": drifted,
        }
        delivery = sender.send(rule.webhook, f"model.{rule.action}", payload)
        alert = Alert(
            uuid.uuid4().hex,
            rule.name,
            run.model,
            rule.action,
            rule.metric,
            value,
            rule.threshold,
            summary,
            delivery,
        )
        _record(store, project, alert, payload)
        alerts.append(alert)
    return alerts
