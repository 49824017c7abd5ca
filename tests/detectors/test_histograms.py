"""Histogram counts in SQL against ``np.histogram`` with the same explicit edges."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from keelwatch.detectors import register_baseline
from keelwatch.detectors._binning import doane_edges, sturges_edges
from keelwatch.detectors._histograms import histograms, linspace_step
from keelwatch.detectors._sql import CURRENT_ONE, REFERENCE_ONE
from keelwatch.store import Store

EDGES = {
    "sturges": sturges_edges(-2.0, 3.0, 700),
    "doane, many bins": doane_edges(-0.37, 1e4 / 3, 10**6, 2.0, 0.3),
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


def test_equal_width_features_are_counted_together_and_others_apart(
    store: Store, rng: np.random.Generator, insert: Any
) -> None:
    """Several features in one call: those with ``np.linspace`` edges share one grouped pass
    (a guessed bin corrected against the edges), the rest are counted one by one; both equal
    ``np.histogram``, on the edges and one ulp either side of them too."""
    edges = {
        "a": sturges_edges(-2.0, 3.0, 700),
        "b": np.array([-2.0, 0.5, 2.5, 2.8, 3.0]),
        "c": sturges_edges(0.1, 0.7, 10**5),
    }
    assert linspace_step(edges["a"]) is not None and linspace_step(edges["c"]) is not None
    assert linspace_step(edges["b"]) is None
    columns = {}
    for name, e in edges.items():
        near = np.concatenate([e, np.nextafter(e, -np.inf), np.nextafter(e, np.inf)])
        spread = rng.uniform(e[0] - 0.5, e[-1] + 0.5, 1000 - near.size)
        columns[name] = np.concatenate([near, spread])
    frame = pd.DataFrame(columns)
    baseline = register_baseline(store, "m", frame)
    window = insert(store, "m", frame.iloc[::-1])
    params = {**window.params(), "b": baseline.baseline_id}
    for source in (REFERENCE_ONE, CURRENT_ONE):
        found = histograms(store, source, params, edges)
        for name, e in edges.items():
            values = columns[name]
            counts, below, above = found[name]
            inside = values[(values >= e[0]) & (values <= e[-1])]
            assert counts.tolist() == np.histogram(inside, e)[0].tolist(), name
            assert (below, above) == (int((values < e[0]).sum()), int((values > e[-1]).sum()))
