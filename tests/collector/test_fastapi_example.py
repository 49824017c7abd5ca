"""examples/fastapi_service.py served by Starlette's TestClient: what the caller gets back and
what reaches the collector for each request."""

from __future__ import annotations

import importlib.util
import sys
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

from keelwatch.collector import InMemoryTransport, flush

with warnings.catch_warnings():
    # Starlette's TestClient warns about httpx at import; the client itself works.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "fastapi_service.py"


def _load_example() -> ModuleType:
    # By path: examples/ is not a package on sys.path wherever pytest is started from.
    spec = importlib.util.spec_from_file_location("keelwatch_example_fastapi_service", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # pydantic resolves the models' annotations through it
    spec.loader.exec_module(module)
    return module


example = _load_example()

FEATURES = ("mean_radius", "mean_texture", "mean_smoothness", "mean_concavity", "mean_symmetry")
TUMOURS = [
    # rows 0 (malignant) and 19 (benign) of the data set, then a made-up one
    dict(zip(FEATURES, (17.99, 10.38, 0.1184, 0.3001, 0.2419), strict=True)),
    dict(zip(FEATURES, (13.54, 14.36, 0.09779, 0.06664, 0.1885), strict=True)),
    dict(zip(FEATURES, (12.0, 18.0, 0.1, 0.05, 0.18), strict=True)),
]


class BrokenModel:
    def predict_proba(self, rows: Any) -> Any:
        raise RuntimeError("model weights not loaded")


def _client(transport: InMemoryTransport, estimator: Any = None, **options: Any) -> TestClient:
    app = example.create_app(estimator, transport=transport, metrics_registry=False)
    return TestClient(app, **options)


def test_each_prediction_is_recorded_with_the_id_the_caller_got():
    transport = InMemoryTransport()
    with _client(transport) as client:
        answers = [client.post("/predict", json=tumour) for tumour in TUMOURS]
        assert [a.status_code for a in answers] == [200, 200, 200]
        bodies = [a.json() for a in answers]
        ids = [b["prediction_id"] for b in bodies]
        assert all(isinstance(i, str) and i for i in ids) and len(set(ids)) == 3
        assert flush(5)
        records = transport.records()

    assert [r["prediction_id"] for r in records] == ids
    for record, tumour, body in zip(records, TUMOURS, bodies, strict=True):
        assert record["model"] == example.MODEL and record["version"] == example.VERSION
        assert record["features"] == tumour
        assert record["output"]["label"] == body["label"]
        assert record["output"]["value"] == body["value"]
        assert record["error"] is None
    # a trained model, not a constant: the data set's labels for its own rows
    assert [b["label"] for b in bodies[:2]] == ["malignant", "benign"]


def test_feedback_is_an_outcome_for_the_prediction():
    transport = InMemoryTransport()
    with _client(transport) as client:
        prediction_id = client.post("/predict", json=TUMOURS[0]).json()["prediction_id"]
        answer = client.post(f"/feedback/{prediction_id}", json={"label": "malignant"})
        assert answer.status_code == 204
        assert client.post(f"/feedback/{prediction_id}", json={"label": "x"}).status_code == 422
        assert flush(5)

    [outcome] = transport.records("/v1/outcomes")
    assert outcome["prediction_id"] == prediction_id
    assert outcome["label"] == "malignant"
    assert outcome["model"] == example.MODEL


def test_a_failing_model_is_a_500_for_the_caller_and_a_recorded_error():
    transport = InMemoryTransport()
    with _client(transport, BrokenModel(), raise_server_exceptions=False) as client:
        answer = client.post("/predict", json=TUMOURS[0])
        assert answer.status_code == 500
        assert flush(5)

    [record] = transport.records()
    assert record["error"] == "RuntimeError: model weights not loaded"
    assert record["output"] is None
    assert record["features"] == TUMOURS[0]
