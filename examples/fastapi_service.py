"""A FastAPI model service that records its predictions and their outcomes with keelwatch.

A logistic regression is trained at start-up on five features of scikit-learn's breast cancer
data set. ``POST /predict`` scores one tumour and returns the prediction id; when the diagnosis is
confirmed, the caller reports it to ``POST /feedback/{prediction_id}``, which keelwatch joins to
the prediction (label coverage, delay, quality metrics).

Run it from the repository root (needs ``pip install "keelwatch[server]"``)::

    KEELWATCH_ENDPOINT=http://127.0.0.1:8787 uvicorn examples.fastapi_service:app

    curl -s localhost:8000/predict -H 'Content-Type: application/json' \\
      -d '{"mean_radius": 13.5, "mean_texture": 14.4, "mean_smoothness": 0.098,
           "mean_concavity": 0.067, "mean_symmetry": 0.19}'
    curl -s localhost:8000/feedback/<prediction_id> -H 'Content-Type: application/json' \\
      -d '{"label": "benign"}'
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any, Literal, Protocol

from fastapi import FastAPI
from pydantic import BaseModel

from keelwatch.collector import configure, current_prediction_id, log_outcome, monitor, shutdown

MODEL = "tumour-classifier"
VERSION = "2024-06-01"


class Tumour(BaseModel):
    """The features the model scores (means over the cell nuclei of one sample)."""

    mean_radius: float
    mean_texture: float
    mean_smoothness: float
    mean_concavity: float
    mean_symmetry: float


class Outcome(BaseModel):
    """The confirmed diagnosis of an earlier prediction."""

    label: Literal["malignant", "benign"]


FEATURES = tuple(Tumour.model_fields)


class Classifier(Protocol):
    """What the service needs of a model: scikit-learn's ``predict_proba`` over ``FEATURES``."""

    def predict_proba(self, rows: Sequence[Sequence[float]]) -> Any: ...


def train() -> Classifier:
    """A scaled logistic regression fitted on the data set's ``FEATURES`` columns."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    data = load_breast_cancer()
    names = list(data.feature_names)
    columns = [names.index(feature.replace("_", " ")) for feature in FEATURES]
    pipeline = make_pipeline(StandardScaler(), LogisticRegression())
    return pipeline.fit(data.data[:, columns], data.target)


def create_app(estimator: Classifier | None = None, **client_options: Any) -> FastAPI:
    """The service.

    Args:
        estimator: a fitted classifier over ``FEATURES`` (default: ``train()`` at start-up).
        client_options: ``keelwatch.collector.configure`` options (default: the ``KEELWATCH_*``
            environment variables); tests pass ``transport=InMemoryTransport()``.
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure(**client_options)  # none given: the KEELWATCH_* environment variables
        app.state.model = estimator if estimator is not None else train()
        yield
        shutdown()  # sends what is still queued (also done at interpreter exit)

    app = FastAPI(title="tumour classifier", lifespan=lifespan)

    # Features: the dict's keys. Output: the "label" and "value" keys of the returned dict (the
    # rest is for the caller). Scoring one row takes well under a millisecond, so it runs on the
    # event loop; a heavier model would go through a thread pool.
    @monitor(model=MODEL, version=VERSION)
    async def score(features: dict[str, float]) -> dict[str, Any]:
        row = [[features[name] for name in FEATURES]]
        p_benign = float(app.state.model.predict_proba(row)[0][1])  # target 1 is benign
        label = "benign" if p_benign >= 0.5 else "malignant"
        # The id exists only while the monitored call runs: read it here, not in the route.
        return {"label": label, "value": p_benign, "prediction_id": current_prediction_id()}

    @app.post("/predict")
    async def predict(tumour: Tumour) -> dict[str, Any]:
        return await score(tumour.model_dump())

    @app.post("/feedback/{prediction_id}", status_code=204)
    async def feedback(prediction_id: str, outcome: Outcome) -> None:
        log_outcome(prediction_id, label=outcome.label, model=MODEL)

    return app


app = create_app()
