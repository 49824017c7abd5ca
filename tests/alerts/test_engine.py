"""Rule evaluation over drift runs: payloads, scopes and cooldowns, recorded in the store."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from keelwatch.alerts import Rule, evaluate_rules
from keelwatch.alerts._webhook import Delivery
from keelwatch.detectors import DriftResult, DriftRun, Window
from keelwatch.store import Store

END = datetime(2026, 3, 1, tzinfo=timezone.utc)


class _Recorder:
    """Stands in for the webhook sender: keeps what would have been posted."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send(self, url: str, event_type: str, data: Mapping[str, Any]) -> Delivery:
        self.sent.append(dict(data))
        return Delivery(f"msg_{len(self.sent)}", url, 204, 1, True)


def _run(segment: tuple[tuple[str, str], ...] = (), version: str = "") -> DriftRun:
    window = Window("churn", END - timedelta(hours=1), END, version=version, segment=segment)
    drifted = DriftResult("age", "numeric", "wasserstein", 0.5, None, 0.1, True, 100, 100, True)
    calm = DriftResult("plan", "categorical", "jensen_shannon", 0.0, None, 0.1, False, 90, 90, True)
    return DriftRun("r", "churn", window, "b", 100, (drifted, calm))


def test_cooldown_is_per_scope_and_payload_names_the_segment(store: Store) -> None:
    rules = (Rule("retrain", "drift_share", 0.5, "http://127.0.0.1:9/hook", cooldown_s=3600),)
    sender = _Recorder()
    clock = [time.time()]  # created_at in the alerts table is the real time

    def fire(run: DriftRun) -> int:
        return len(evaluate_rules(store, run, rules, sender, now=lambda: clock[0]))  # type: ignore[arg-type]

    acme, globex = (("tenant", "acme"),), (("tenant", "globex"),)
    assert fire(_run()) == 1
    assert fire(_run(acme)) == 1  # another scope: not silenced by the model's alert
    assert fire(_run(globex)) == 1
    assert fire(_run(version="v2")) == 1
    assert fire(_run(acme)) == 0  # same scope inside its cooldown
    assert fire(_run()) == 0
    clock[0] += 10 * 3600  # past the cooldown
    assert fire(_run(acme)) == 1

    segments = [sent["segment"] for sent in sender.sent]
    assert segments == ["", "tenant=acme", "tenant=globex", "", "tenant=acme"]
    assert sender.sent[1]["summary"].startswith("churn [tenant=acme]: drift_share = 0.5")
    stored = store.query("SELECT payload FROM alerts ORDER BY created_at").column("payload")
    assert [json.loads(p)["segment"] for p in stored.to_pylist()] == segments
