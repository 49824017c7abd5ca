"""Inputs (kwargs, dicts, pandas, NumPy, batches) and outputs (labels, probabilities, values,
LLM text and tokens) on the wire."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from keelwatch.collector import InMemoryTransport, current_prediction_id, instrument_estimator


@pytest.fixture
def setup(make_client):
    transport = InMemoryTransport()
    return make_client(transport=transport, batch_size=1000), transport


def test_positional_keyword_default_and_dict_arguments(setup):
    client, transport = setup

    @client.monitor(model="m", features=["row", "region"])
    def f(row, region="eu", *, debug=False):
        return True

    f({"age": 41, "plan": "pro", "vip": True, "score": math.nan}, region="us", debug=True)
    assert client.flush(5)
    [r] = transport.records()
    assert r["features"] == {"age": 41, "plan": "pro", "vip": "true", "score": None,
                             "region": "us"}  # fmt: skip
    assert r["output"]["label"] == "true"


def test_pandas_series_row_and_numpy_vector(setup):
    client, transport = setup
    f = client.monitor(model="m", feature_names=["a", "b"])(lambda x: np.float64(0.5))
    f(pd.Series({"a": np.int64(1), "b": 2.5}))
    f(np.array([3.0, np.inf]))
    assert client.flush(5)
    first, second = transport.records()
    assert first["features"] == {"a": 1, "b": 2.5}
    # Infinity is "missing": null in JSON, a null (left out when decoded) in Arrow.
    assert second["features"]["a"] == 3.0 and second["features"].get("b") is None
    assert first["output"]["value"] == 0.5


def test_dataframe_batch_makes_one_record_per_row(setup):
    client, transport = setup
    call_ids = []

    @client.monitor(model="m", tags={"src": "batch"})
    def predict(df, threshold=0.5):
        call_ids.append(current_prediction_id())
        return np.array([0, 1, 1])

    frame = pd.DataFrame({"age": [20, 30, 40], "plan": ["a", "b", None]})
    assert list(predict(frame)) == [0, 1, 1]
    assert client.flush(5)
    records = transport.records()
    assert [r["prediction_id"] for r in records] == [f"{call_ids[0]}-{i}" for i in range(3)]
    assert [r["features"] for r in records] == [
        {"threshold": 0.5, "age": 20, "plan": "a"},
        {"threshold": 0.5, "age": 30, "plan": "b"},
        {"threshold": 0.5, "age": 40, "plan": None},
    ]
    assert [r["output"]["label"] for r in records] == ["0", "1", "1"]
    assert all(r["tags"] == {"src": "batch"} for r in records)


def test_ndarray_batch_with_probabilities(setup):
    client, transport = setup
    proba = np.array([[0.9, 0.1], [0.2, 0.8]])
    f = client.monitor(model="m", feature_names=["x", "y"], classes=["no", "yes"])(lambda X: proba)
    f(np.array([[1.0, 2.0], [3.0, 4.0]]))
    assert client.flush(5)
    a, b = transport.records()
    assert a["features"] == {"x": 1.0, "y": 2.0} and b["features"] == {"x": 3.0, "y": 4.0}
    assert a["output"]["proba"] == [0.9, 0.1] and a["output"]["label"] == "no"
    assert b["output"]["value"] == 0.8 and b["output"]["label"] == "yes"


def test_multiclass_regression_and_llm_outputs(setup):
    client, transport = setup
    client.monitor(model="multi")(lambda: [0.2, 0.5, 0.3])()
    client.monitor(model="reg", task="regression")(lambda: 7)()
    llm = client.monitor(
        model="llm",
        output=lambda r: {"text": r["choices"][0], "prompt_tokens": r["usage"][0],
                          "completion_tokens": r["usage"][1]},
    )(lambda prompt: {"choices": ["Paris"], "usage": (12, 1)})  # fmt: skip
    llm("Capital of France?")
    assert client.flush(5)
    multi, reg, text = transport.records()
    assert multi["output"]["proba"] == [0.2, 0.5, 0.3] and multi["output"]["label"] == "1"
    assert multi["output"]["value"] is None
    assert reg["output"]["value"] == 7.0
    assert text["output"] == {"label": None, "value": None, "proba": None, "text": "Paris",
                              "prompt_tokens": 12, "completion_tokens": 1}  # fmt: skip
    assert text["features"] == {"prompt": "Capital of France?"}


def test_batch_output_length_mismatch_keeps_rows_without_output(setup):
    client, transport = setup
    client.monitor(model="m")(lambda rows: [1])([{"a": 1}, {"a": 2}])
    assert client.flush(5)
    assert [r["output"] for r in transport.records()] == [None, None]


def test_instrument_sklearn_pipeline(setup):
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    client, transport = setup
    data = load_iris(as_frame=True)
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(
        data.data, data.target
    )
    model = instrument_estimator(pipe, model="iris", version="1", client=client)
    X = data.data.iloc[:5]
    np.testing.assert_array_equal(model.predict_proba(X), pipe.predict_proba(X))
    np.testing.assert_array_equal(model.predict(X), pipe.predict(X))
    assert model.classes_.tolist() == [0, 1, 2]  # other attributes delegate
    assert client.flush(5)
    records = transport.records()
    assert len(records) == 10
    proba_rows = [r for r in records if r["tags"] == {"method": "predict_proba"}]
    expected = pipe.predict_proba(X)
    for r, row in zip(proba_rows, expected, strict=True):
        assert r["output"]["proba"] == pytest.approx(row.tolist())
        assert r["output"]["label"] == str(int(row.argmax()))
    assert proba_rows[0]["features"] == {k: float(v) for k, v in X.iloc[0].items()}
    predict_rows = [r for r in records if r["tags"] == {"method": "predict"}]
    assert [r["output"]["label"] for r in predict_rows] == [str(v) for v in pipe.predict(X)]


def test_instrument_estimator_names_ndarray_columns(setup):
    from sklearn.linear_model import LinearRegression

    client, transport = setup
    X = np.array([[1.0, 2.0], [2.0, 1.0], [3.0, 5.0]])
    reg = LinearRegression().fit(X, [1.0, 2.0, 3.0])
    model = instrument_estimator(reg, model="r", feature_names=["a", "b"], client=client)
    model.predict(X[:2])
    assert client.flush(5)
    records = transport.records()
    assert [r["features"] for r in records] == [{"a": 1.0, "b": 2.0}, {"a": 2.0, "b": 1.0}]
    assert records[0]["output"]["value"] == pytest.approx(reg.predict(X[:1])[0])


def test_a_batch_larger_than_the_queue_is_cut_and_counted(make_client):
    transport = InMemoryTransport()
    client = make_client(transport=transport, max_queue_size=5)
    f = client.monitor(model="m", feature_names=["a"])(lambda X: X[:, 0] * 2)
    f(np.arange(8.0).reshape(8, 1))
    assert client.flush(5)
    records = transport.records()
    assert [(r["features"]["a"], r["output"]["value"]) for r in records] == [
        (float(i), 2.0 * i) for i in range(5)
    ]
    assert client.stats().dropped == {"queue_full": 3}


def test_one_dict_argument_fast_and_general_shapes(make_client):
    transport, masked = InMemoryTransport(), InMemoryTransport()
    client = make_client(transport=masked, deny=["secret"])
    plain = make_client(transport=transport)
    f = plain.monitor(model="m")(lambda row: 0.25)
    g = client.monitor(model="m")(lambda row: 0.25)
    row = {"a": 1.5, "b": 2, "secret": 3.0}
    f(row)  # numbers only: formatted straight from the template
    f({"a": math.inf, "b": math.nan, 7: 1.0, "c": True, "d": 10**30})
    g(row)  # masking applies: the general path, on a copy
    assert plain.flush(5) and client.flush(5)
    first, second = transport.records()
    [third] = masked.records()
    assert first["features"] == row and first["output"]["value"] == 0.25
    assert second["features"] == {"a": None, "b": None, "7": 1.0, "c": "true", "d": 10**30}
    assert third["features"] == {"a": 1.5, "b": 2}
    assert row == {"a": 1.5, "b": 2, "secret": 3.0}
