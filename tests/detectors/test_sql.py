"""Histogram counts in SQL against ``np.histogram`` with the same explicit edges."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from keelwatch.detectors import register_baseline
from keelwatch.detectors._binning import sturges_edges
from keelwatch.detectors._sql import CURRENT_ONE, REFERENCE_ONE, histograms
from keelwatch.store import Store

EDGES = {
    "sturges": sturges_edges(-2.0, 3.0, 700),
    "unequal widths": np.array([-2.0, 0.5, 2.5, 2.8, 3.0]),
    "narrow bins": np.array([-2.0, -1.9, -1.8, -1.7, 3.0]),
}


@pytest.mark.parametrize("case", sorted(EDGES))
def test_histograms_equal_numpy(
    store: Store, rng: np.random.Generator, insert: Any, case: str
) -> None:
    edges = EDGES[case]
    # Values on the edges themselves too, where a guessed bin is most easily off by one.
    values = np.concatenate([rng.normal(0.5, 1.5, 700), edges, [-5.0, 9.0, np.nextafter(3, 4)]])
    baseline = register_baseline(store, "m", pd.DataFrame({"x": values}))
    window = insert(store, "m", pd.DataFrame({"x": values[::-1]}))
    params = {**window.params(), "b": baseline.baseline_id}
    inside = values[(values >= edges[0]) & (values <= edges[-1])]
    expected = np.histogram(inside, edges)[0]
    for source in (REFERENCE_ONE, CURRENT_ONE):
        counts, below, above = histograms(store, source, params, {"x": edges})["x"]
        assert counts.tolist() == expected.tolist()
        assert (below, above) == (int((values < edges[0]).sum()), int((values > edges[-1]).sum()))
