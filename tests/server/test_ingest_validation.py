"""Validation of ingested records, without a store: per-record errors name index and field."""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any

import pytest

from keelwatch.collector.server import parse_outcomes, parse_predictions
from keelwatch.collector.server._ingest import MAX_AGE_S, MAX_FUTURE_SKEW_S

NOW = 1_767_225_600.0


def record(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "prediction_id": "p1",
        "model": "churn",
        "version": "v1",
        "slot": "canary",
        "ts": NOW - 1,
        "latency_ms": 3.5,
        "error": None,
        "features": {"age": 41, "plan": "pro", "income": None, "vip": True},
        "output": {"label": 1, "value": 0.8, "proba": [0.2, 0.8]},
        "tags": {"tenant": "acme"},
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not ...}


def test_valid_record_becomes_one_row() -> None:
    batch = parse_predictions({"records": [record()]}, "proj", NOW)
    assert batch.rejected == ()
    row = batch.table.to_pylist()[0]
    assert row["project"] == "proj"
    assert row["ts"] == datetime.fromtimestamp(NOW - 1, tz=timezone.utc)
    assert dict(row["num"]) == {"age": 41.0}
    assert dict(row["cat"]) == {"plan": "pro", "vip": "true"}
    assert row["out_label"] == "1"
    assert row["out_proba"] == [0.2, 0.8]
    assert dict(row["tags"]) == {"tenant": "acme"}


@pytest.mark.parametrize(
    ("changes", "field", "problem"),
    [
        ({"prediction_id": ...}, "prediction_id", "is required"),
        ({"prediction_id": ""}, "prediction_id", "must not be empty"),
        ({"prediction_id": "x" * 129}, "prediction_id", "longer than 128"),
        ({"model": 7}, "model", "must be a string, got int"),
        ({"model": ...}, "model", "is required"),
        ({"ts": "yesterday"}, "ts", "must be a number, got str"),
        ({"ts": True}, "ts", "must be a number, got bool"),
        ({"ts": ...}, "ts", "is required"),
        ({"ts": NOW + MAX_FUTURE_SKEW_S + 5}, "ts", "in the future"),
        ({"ts": NOW - MAX_AGE_S - 5}, "ts", "in the past"),
        ({"ts": math.nan}, "ts", "must be finite"),
        ({"latency_ms": -1}, "latency_ms", "must be >= 0"),
        ({"latency_ms": math.inf}, "latency_ms", "must be finite"),
        ({"features": {"x": math.nan}}, "features.x", "must be finite"),
        ({"features": {"x": -math.inf}}, "features.x", "must be finite"),
        ({"features": {"x": [1, 2]}}, "features.x", "got list"),
        ({"features": {"": 1}}, "features.", "1..128 characters"),
        ({"features": {"x": "y" * 70000}}, "features.x", "longer than"),
        ({"features": [1, 2]}, "features", "must be an object, got list"),
        ({"output": {"proba": "0.3"}}, "output.proba", "list of numbers"),
        ({"output": {"proba": [0.1, None]}}, "output.proba", "list of numbers"),
        ({"output": {"logits": [1]}}, "output.logits", "not a known field"),
        ({"output": {"prompt_tokens": -3}}, "output.prompt_tokens", ">= 0"),
        ({"tags": {"t": 5}}, "tags.t", "must be a string"),
        ({"colour": "red"}, "colour", "not a known field"),
        ({"error": "e" * 70000}, "error", "longer than"),
        ({"trace_id": "f" * 65}, "trace_id", "longer than 64"),
    ],
)
def test_bad_record_is_refused_with_its_field(
    changes: dict[str, Any], field: str, problem: str
) -> None:
    good = record(prediction_id="good")
    batch = parse_predictions({"records": [good, record(**changes), good]}, "p", NOW)
    assert batch.table.num_rows == 2
    assert len(batch.rejected) == 1
    rejected = batch.rejected[0]
    assert (rejected.index, rejected.field) == (1, field)
    assert problem in rejected.error


@pytest.mark.parametrize("item", [None, 5, "x", [1]])
def test_non_object_record_is_refused(item: Any) -> None:
    batch = parse_predictions({"records": [item, record()]}, "p", NOW)
    assert [r.index for r in batch.rejected] == [0]
    assert batch.table.num_rows == 1


@pytest.mark.parametrize("payload", [[], {}, {"records": {}}, {"records": "x"}, "records", None])
def test_body_without_records_array_is_an_error(payload: Any) -> None:
    with pytest.raises(ValueError, match="records"):
        parse_predictions(payload, "p", NOW)


def test_many_bad_records_each_named() -> None:
    records = [record(prediction_id=f"p{i}") for i in range(10)]
    records[2]["ts"] = "bad"
    records[7]["features"] = {"f": {"nested": 1}}
    batch = parse_predictions({"records": records}, "p", NOW)
    assert [(r.index, r.field) for r in batch.rejected] == [(2, "ts"), (7, "features.f")]
    assert batch.table.column("prediction_id").to_pylist() == [
        f"p{i}" for i in range(10) if i not in (2, 7)
    ]


def test_outcomes_need_a_label_or_value() -> None:
    ok = {"prediction_id": "p1", "model": "m", "ts": NOW, "label": 0}
    missing = {"prediction_id": "p2", "model": "m", "ts": NOW}
    extra = {**ok, "score": 1}
    batch = parse_outcomes({"records": [ok, missing, extra]}, "p", NOW)
    assert batch.table.column("label").to_pylist() == ["0"]
    assert [(r.index, r.field) for r in batch.rejected] == [(1, "label"), (2, "score")]
