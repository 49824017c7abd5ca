"""The domain classifier finds a flipped correlation that no univariate method sees."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest

from keelwatch.detectors import domain_classifier_drift, register_baseline, run_drift
from keelwatch.store import Store


def _pair(rng: np.random.Generator, n: int, rho: float) -> pd.DataFrame:
    values = rng.multivariate_normal([0.0, 0.0], [[1.0, rho], [rho, 1.0]], size=n)
    return pd.DataFrame({"a": values[:, 0], "b": values[:, 1], "noise": rng.normal(size=n)})


def test_domain_classifier(store: Store, rng: np.random.Generator, insert: Any) -> None:
    baseline = register_baseline(store, "m", _pair(rng, 4000, 0.8))
    start = pd.Timestamp("2026-01-01", tz="UTC").to_pydatetime()
    same = insert(store, "m", _pair(rng, 1500, 0.8), start=start)
    flipped = insert(store, "m", _pair(rng, 1500, -0.8), start=start + timedelta(days=1))

    quiet = domain_classifier_drift(store, baseline, same, sample=1500)
    assert quiet is not None and not quiet.drifted and quiet.auc < 0.55
    assert quiet.n_reference == 1500 and quiet.features == ("a", "b", "noise")

    loud = domain_classifier_drift(store, baseline, flipped, sample=1500)
    assert loud is not None and loud.drifted and loud.auc > 0.7
    # Marginals are unchanged: the univariate deciding methods stay quiet.
    assert not run_drift(store, baseline, flipped).drifted_features


def test_too_few_rows(store: Store, rng: np.random.Generator, insert: Any) -> None:
    baseline = register_baseline(store, "m", _pair(rng, 100, 0.0))
    window = insert(store, "m", _pair(rng, 5, 0.0))
    assert domain_classifier_drift(store, baseline, window) is None
    with pytest.raises(KeyError):
        baseline.feature("missing")
