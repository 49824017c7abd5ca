"""Arrow IPC stream bodies: same rows as JSON, vectorised checks naming row and column."""

from __future__ import annotations

import math
import time
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.ipc as ipc
import pytest

from keelwatch.collector.server import parse_predictions
from keelwatch.collector.server._arrow_ingest import UnreadableBody, parse_arrow
from keelwatch.store import EmbeddedStore

NOW = 1_767_225_600.0
ARROW = {"content-type": "application/vnd.apache.arrow.stream"}


def stream(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def good(n: int = 3, **columns: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "prediction_id": [f"p{i}" for i in range(n)],
        "model": ["churn"] * n,
        "ts": [NOW - 10 + i for i in range(n)],
        "latency_ms": [1.5] * n,
        "features.age": [30 + i for i in range(n)],
        "features.income": [1000.0, None, 3000.0][:n],
        "features.plan": ["pro", None, "free"][:n],
        "features.vip": [True, False, None][:n],
        "output.label": [1, 0, 1][:n],
        "output.value": [0.9, None, 0.4][:n],
        "output.proba": [[0.1, 0.9], [0.6, 0.4], []][:n],
        "tags.tenant": ["acme"] * n,
    }
    data.update(columns)
    return data


def test_arrow_rows_equal_json_rows() -> None:
    data = good(**{"tags.tenant": ["acme", None, "globex"]})  # a null tag is an absent tag
    arrow = parse_arrow("predictions", stream(pa.table(data)), "proj", NOW)
    records = [
        {
            "prediction_id": data["prediction_id"][i],
            "model": "churn",
            "ts": data["ts"][i],
            "latency_ms": 1.5,
            "features": {
                "age": data["features.age"][i],
                "income": data["features.income"][i],
                "plan": data["features.plan"][i],
                "vip": data["features.vip"][i],
            },
            "output": {
                "label": data["output.label"][i],
                "value": data["output.value"][i],
                "proba": data["output.proba"][i],
            },
            "tags": {} if i == 1 else {"tenant": data["tags.tenant"][i]},
        }
        for i in range(3)
    ]
    as_json = parse_predictions({"records": records}, "proj", NOW)
    assert arrow.rejected == as_json.rejected == ()
    assert arrow.table.to_pylist() == as_json.table.to_pylist()


def test_timestamp_column_is_accepted() -> None:
    micros = pa.array([int((NOW - 5) * 1e6)] * 3).cast(pa.timestamp("us", tz="UTC"))
    batch = parse_arrow("predictions", stream(pa.table(good(ts=micros))), "p", NOW)
    assert batch.rejected == ()
    assert batch.table.column("ts").cast(pa.int64()).to_pylist() == [int((NOW - 5) * 1e6)] * 3


@pytest.mark.parametrize(
    ("column", "values", "field", "problem"),
    [
        ("prediction_id", ["a", None, "c"], "prediction_id", "is required"),
        ("prediction_id", ["a", "", "c"], "prediction_id", "must not be empty"),
        ("prediction_id", ["a", "x" * 200, "c"], "prediction_id", "longer than 128"),
        ("ts", [NOW, NOW + 1e6, NOW], "ts", "in the future"),
        ("ts", [NOW, None, NOW], "ts", "is required"),
        ("features.age", [1.0, math.nan, 2.0], "features.age", "must be finite"),
        ("features.age", [1.0, math.inf, 2.0], "features.age", "must be finite"),
        ("latency_ms", [1.0, -2.0, 1.0], "latency_ms", "must be >= 0"),
        ("output.proba", [[0.5], [math.nan], []], "output.proba", "list of numbers"),
    ],
)
def test_bad_row_is_refused_others_kept(
    column: str, values: list[Any], field: str, problem: str
) -> None:
    batch = parse_arrow("predictions", stream(pa.table(good(**{column: values}))), "p", NOW)
    assert [(r.index, r.field) for r in batch.rejected] == [(1, field)]
    assert problem in batch.rejected[0].error
    kept = batch.table.column("prediction_id").to_pylist()
    assert kept == [good()["prediction_id"][0] if column != "prediction_id" else "a", kept[1]]
    assert batch.table.num_rows == 2


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ({"colour": ["r"] * 3}, "colour: is not a known column"),
        ({"model": [1, 2, 3]}, "model: must be a string column"),
        ({"features.x": [[1], [2], [3]]}, "features.x: must be a string column"),
        ({"tags.n": [1, 2, 3]}, "tags.n: must be a string column"),
        ({"output.proba": ["a", "b", "c"]}, "output.proba: must be a list of numbers"),
    ],
)
def test_bad_columns_refuse_the_batch(columns: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_arrow("predictions", stream(pa.table(good(**columns))), "p", NOW)


def test_not_arrow_is_unreadable() -> None:
    with pytest.raises(UnreadableBody):
        parse_arrow("predictions", b'{"records": []}', "p", NOW)


def test_arrow_over_http(client: Any, store: EmbeddedStore) -> None:
    now = time.time()
    body = stream(pa.table(good(ts=[now - 3, now - 2, now + 1e6])))
    answer = client.post("/v1/predictions", content=body, headers=ARROW)
    assert answer.status_code == 200
    assert answer.json()["accepted"] == 2
    assert answer.json()["rejected"][0]["index"] == 2
    again = client.post("/v1/predictions", content=body, headers=ARROW)
    assert again.json()["accepted"] == 2
    assert store.query("SELECT count() AS n FROM predictions").column("n")[0].as_py() == 2
    assert client.post("/v1/predictions", content=b"junk", headers=ARROW).status_code == 400
    bad = stream(pa.table({"model": [1]}))
    assert client.post("/v1/predictions", content=bad, headers=ARROW).status_code == 422


def test_arrow_outcomes_over_http(client: Any, store: EmbeddedStore) -> None:
    table = pa.table(
        {
            "prediction_id": ["a", "b"],
            "model": ["m", "m"],
            "ts": [time.time()] * 2,
            "label": [1, None],
        }
    )
    answer = client.post("/v1/outcomes", content=stream(table), headers=ARROW).json()
    assert answer["accepted"] == 1
    assert answer["rejected"][0]["field"] == "label"
    assert orjson.loads(orjson.dumps(answer))["rejected"][0]["index"] == 1


@pytest.mark.parametrize(
    "keep",
    [
        ["prediction_id", "model", "ts"],
        ["prediction_id", "model", "ts", "features.age"],
        ["prediction_id", "model", "ts", "features.plan"],
    ],
)
def test_minimal_columns(keep: list[str]) -> None:
    data = {k: v for k, v in good().items() if k in keep}
    batch = parse_arrow("predictions", stream(pa.table(data)), "p", NOW)
    assert batch.rejected == ()
    assert batch.table.num_rows == 3
    assert batch.table.column("tags").to_pylist() == [[], [], []]


@pytest.mark.parametrize(
    "income",
    [
        [1000.0, 2000.0, 3000.0],  # float64, no nulls: the one-pass path
        [1000, 2000, 3000],  # integers: the per-column path
        [1000.0, 2000.0, math.nan],  # a non-finite value: the per-column path names it
    ],
)
def test_dense_and_per_column_feature_maps_agree(income: list[Any]) -> None:
    data = good(**{"features.age": [30.0, 31.0, 32.0], "features.income": income})
    got = parse_arrow("predictions", stream(pa.table(data)), "proj", NOW)
    expected = [
        [("age", 30.0 + i), ("income", float(income[i]))]
        for i in range(3)
        if math.isfinite(income[i])
    ]
    assert got.table.column("num").to_pylist() == expected
    assert [(r.index, r.field) for r in got.rejected] == (
        [] if math.isfinite(income[2]) else [(2, "features.income")]
    )
