"""scikit-learn: record the predictions of an estimator or Pipeline without editing its code.

scikit-learn is not imported here; any object with ``predict`` / ``predict_proba`` works.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ._decorator import monitor
from ._errors import ConfigError

if TYPE_CHECKING:
    from ._client import Client

_METHODS = ("predict", "predict_proba")


class InstrumentedEstimator:
    """Wraps an estimator: ``predict`` and ``predict_proba`` are recorded, the rest delegated."""

    def __init__(
        self,
        estimator: Any,
        model: str,
        version: str = "",
        feature_names: Sequence[str] | None = None,
        client: Client | None = None,
        **options: Any,
    ) -> None:
        if not any(callable(getattr(estimator, m, None)) for m in _METHODS):
            raise ConfigError("estimator", estimator, "has neither predict nor predict_proba")
        self.estimator = estimator
        names = feature_names
        if names is None and getattr(estimator, "feature_names_in_", None) is not None:
            names = [str(n) for n in estimator.feature_names_in_]
        classes = getattr(estimator, "classes_", None)
        common: dict[str, Any] = {
            "version": version,
            "feature_names": names,
            "features": ["X"],
            "client": client,
            **options,
        }
        for method in _METHODS:
            fn = getattr(estimator, method, None)
            if callable(fn):
                extra: dict[str, Any] = {}
                if method == "predict_proba" and classes is not None:
                    extra["classes"] = [c.item() if hasattr(c, "item") else c for c in classes]
                    extra["task"] = "classification"
                wrapped = monitor(model, tags={"method": method}, **common, **extra)(_call(fn))
                setattr(self, method, wrapped)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.estimator, name)


def _call(fn: Any) -> Any:
    def call(X: Any, *args: Any, **kwargs: Any) -> Any:
        return fn(X, *args, **kwargs)

    return call


def instrument_estimator(
    estimator: Any,
    model: str,
    version: str = "",
    feature_names: Sequence[str] | None = None,
    **options: Any,
) -> InstrumentedEstimator:
    """Wrap ``estimator`` so its ``predict`` / ``predict_proba`` calls are recorded.

    Each row of ``X`` becomes one prediction record (features named after ``feature_names``, or
    the estimator's ``feature_names_in_``, or ``X_<i>``); ``predict_proba`` rows are recorded as
    ``output.proba`` with ``label`` taken from ``classes_``. ``options`` are ``monitor``'s.
    """
    return InstrumentedEstimator(estimator, model, version, feature_names, **options)
