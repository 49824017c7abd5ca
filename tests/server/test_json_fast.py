"""The JSON fast path: same rows as the record validator on valid batches, defers otherwise."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest

from keelwatch.collector.server import parse_predictions
from keelwatch.collector.server._json_fast import fast_predictions

NOW = 1_767_225_600.0


def batch(n: int = 50, seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    records = []
    for i in range(n):
        features: dict[str, Any] = {f"f{j}": float(rng.normal()) for j in range(5)}
        features.update(
            {"n": int(rng.integers(0, 9)), "plan": ["a", "b"][i % 2], "vip": i % 3 == 0}
        )
        if i % 4 == 0:
            features["f1"] = None
        record: dict[str, Any] = {
            "prediction_id": f"id-{i}",
            "model": "churn",
            "ts": NOW - float(rng.uniform(0, 1000)),
            "features": features,
        }
        if i % 2:
            record.update(
                version="v2",
                latency_ms=float(rng.exponential(3)),
                error=None,
                output={"label": i % 2, "value": 0.25, "proba": [0.75, 0.25], "prompt_tokens": 7},
                tags={"tenant": "acme"},
                trace_id="ab" * 16,
            )
        else:
            record["output"] = {"label": True, "text": "hi", "completion_tokens": None}
        records.append(record)
    return {"records": records}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_valid_batches_give_the_same_rows(seed: int) -> None:
    payload = batch(seed=seed)
    fast = fast_predictions(payload, "p", NOW)
    exact = parse_predictions(payload, "p", NOW)
    assert fast is not None
    assert fast.table.to_pylist() == exact.table.to_pylist()
    assert fast.table.schema == exact.table.schema


def test_empty_batch() -> None:
    fast = fast_predictions({"records": []}, "p", NOW)
    assert fast is not None
    assert fast.table.num_rows == 0


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("prediction_id",), 5),
        (("prediction_id",), ""),
        (("model",), None),
        (("ts",), "now"),
        (("ts",), True),
        (("ts",), NOW + 1e6),
        (("latency_ms",), -1.0),
        (("features", "f0"), [1]),
        (("features", "f0"), {"a": 1}),
        (("features", "f0"), "x" * 70000),
        (("output", "proba"), [0.5, "x"]),
        (("output", "proba"), [0.5, True]),
        (("output", "value"), "high"),
        (("output", "extra"), 1),
        (("tags", "t"), 1),
        (("colour",), "red"),
        (("output", "prompt_tokens"), -2),
        (("features", "big"), 2**70),
        (("features",), []),
        (("features",), 0),
        (("tags",), ""),
        (("output",), False),
        (("features", ""), 1.0),
    ],
)
def test_any_bad_value_defers_to_the_exact_validator(path: tuple[str, ...], value: Any) -> None:
    payload = copy.deepcopy(batch(5))
    target = payload["records"][3]
    for key in path[:-1]:
        target = target.setdefault(key, {})
    target[path[-1]] = value
    assert fast_predictions(payload, "p", NOW) is None
    exact = parse_predictions(payload, "p", NOW)
    if path == ("features", "big"):  # valid, but beyond int64: the exact path stores it
        assert exact.rejected == ()
    else:
        assert [r.index for r in exact.rejected] == [3]


@pytest.mark.parametrize("payload", [[], {"records": {}}, {"records": [None]}, {"records": [[]]}])
def test_odd_payloads_defer(payload: Any) -> None:
    assert fast_predictions(payload, "p", NOW) is None


def test_numeric_only_batch_gives_the_same_rows() -> None:
    payload = batch(30)
    for record in payload["records"]:
        record["features"] = {k: v for k, v in record["features"].items() if k.startswith("f")}
        record.pop("tags", None)
    fast = fast_predictions(payload, "p", NOW)
    assert fast is not None
    assert fast.table.to_pylist() == parse_predictions(payload, "p", NOW).table.to_pylist()
    assert fast.table.column("cat").to_pylist() == [[]] * 30


def test_all_paths_build_one_schema() -> None:
    import pyarrow as pa
    import pyarrow.ipc as ipc

    from keelwatch.collector.server._arrow_ingest import parse_arrow

    payload = batch(4)
    table = pa.table({"prediction_id": ["x"], "model": ["m"], "ts": [NOW - 1]})
    sink = pa.BufferOutputStream()
    with ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    tables = [
        fast_predictions(payload, "p", NOW).table,  # type: ignore[union-attr]
        parse_predictions(payload, "p", NOW).table,
        parse_arrow("predictions", sink.getvalue().to_pybytes(), "p", NOW).table,
    ]
    assert pa.concat_tables(tables).num_rows == 9  # the group commit concatenates them
