"""Distance thresholds calibrated from the baseline itself (leave-one-chunk-out).

A fixed 0.1 means different things at different window sizes: the distance between two samples
of the *same* distribution shrinks like ``1/sqrt(n)``. Calibration measures that noise floor
where no drift exists. The baseline's rows are cut into ``chunks`` contiguous chunks of
``chunk_rows`` rows (choose the size of a production window); each chunk is scored against the
*rest* of the baseline with the same method as a run (binned methods on the baseline's own bins,
i.e. ``compat="keelwatch"``), and the threshold is a high quantile (default 0.95) of those
scores.

Why chunk-vs-rest and a quantile: NannyML scores each reference chunk against the whole
reference, which contains that chunk, so the two samples overlap (a chunk of a tenth of the
reference shares a tenth of its mass with it) and the scores are biased low; its threshold,
mean + 3 std of those few scores, then sits below the noise of an independent window, and 4–8%
of checks on unshifted data alert (NannyML issue #426). Leaving the chunk out makes the two
samples disjoint, exactly like a production window against its baseline, and an empirical
quantile assumes nothing about the scores' distribution.

p-value methods are not calibrated: their alpha already fixes the false-alarm rate.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from keelwatch.store import Store, StoreError

from ._baseline import Baseline, FeatureProfile
from ._config import P_VALUE_METHODS
from ._ecdf import query_distances
from ._ecdf_sql import wasserstein_query
from ._methods import hellinger, jensen_shannon, kl_divergence, psi

__all__ = [
    "CalibratedThreshold",
    "as_feature_thresholds",
    "calibrate_thresholds",
    "stored_calibration",
]

_log = logging.getLogger(__name__)

_CHUNK = "row >= {lo:UInt64} AND row < {hi:UInt64}"
_VALUES = (
    "SELECT value AS x FROM baseline_values WHERE baseline_id = {b:String} AND feature = {f:String}"
)
_REST_VS_CHUNK = wasserstein_query(f"{_VALUES} AND NOT ({_CHUNK})", f"{_VALUES} AND {_CHUNK}")
_BINNED = {
    "psi": psi,
    "kl_div": kl_divergence,
    "jensen_shannon": jensen_shannon,
    "hellinger": hellinger,
}


@dataclass(frozen=True)
class CalibratedThreshold:
    """A feature's calibrated threshold for one method, with the chunk scores behind it."""

    feature: str
    method: str
    threshold: float
    chunk_rows: int
    scores: tuple[float, ...]


def _numeric_chunk_counts(
    store: Store, baseline_id: str, profile: FeatureProfile, size: int, chunks: int
) -> np.ndarray:
    """``chunks x bins`` counts of each chunk in the profile's bins (outside: edge bins)."""
    rows = store.query(
        "SELECT intDiv(row, {size:UInt64}) AS j, arrayCount(t -> t <= value, "
        "{inner:Array(Float64)}) AS b, count() AS c FROM baseline_values "
        "WHERE baseline_id = {b:String} AND feature = {f:String} AND j < {k:UInt64} "
        "GROUP BY j, b",
        {
            "b": baseline_id,
            "f": profile.name,
            "size": size,
            "k": chunks,
            "inner": [float(e) for e in profile.edges[1:-1]],
        },
    ).to_pylist()
    counts = np.zeros((chunks, len(profile.counts)))
    for row in rows:
        counts[int(row["j"]), int(row["b"])] = int(row["c"])
    return counts


def _categorical_chunk_counts(
    store: Store, baseline_id: str, profile: FeatureProfile, size: int, chunks: int
) -> np.ndarray:
    keys = sorted(profile.categories)
    rows = store.query(
        "SELECT intDiv(row, {size:UInt64}) AS j, cat[{f:String}] AS x, count() AS c "
        "FROM baseline_rows WHERE baseline_id = {b:String} AND mapContains(cat, {f:String}) "
        "AND j < {k:UInt64} GROUP BY j, x",
        {"b": baseline_id, "f": profile.name, "size": size, "k": chunks},
    ).to_pylist()
    counts = np.zeros((chunks, len(keys)))
    for row in rows:
        counts[int(row["j"]), keys.index(str(row["x"]))] = int(row["c"])
    return counts


def _scores(
    store: Store, baseline: Baseline, profile: FeatureProfile, method: str, size: int, chunks: int
) -> list[float]:
    if method == "wasserstein":
        out = []
        for j in range(chunks):
            params = {"b": baseline.baseline_id, "f": profile.name, "lo": j * size}
            found = query_distances(store, _REST_VS_CHUNK, {**params, "hi": (j + 1) * size})
            if found is not None:
                out.append(found.wasserstein / max(profile.std or 0.0, 0.001))
        return out
    if method not in _BINNED:
        raise ValueError(f"cannot calibrate {method}")
    if profile.kind == "numeric":
        counts = _numeric_chunk_counts(store, baseline.baseline_id, profile, size, chunks)
        total = np.asarray(profile.counts, dtype=float)
    else:
        counts = _categorical_chunk_counts(store, baseline.baseline_id, profile, size, chunks)
        total = np.array([profile.categories[k] for k in sorted(profile.categories)], float)
    score = _BINNED[method]
    return [score(total - chunk, chunk) for chunk in counts if chunk.sum() > 0]


def calibrate_thresholds(
    store: Store,
    baseline: Baseline,
    methods: dict[str, tuple[str, ...]] | None = None,
    *,
    chunks: int = 20,
    chunk_rows: int | None = None,
    quantile: float = 0.95,
) -> list[CalibratedThreshold]:
    """Per feature and distance method, the ``quantile`` of leave-one-chunk-out scores.

    Args:
        methods: per feature kind (``"numeric"``, ``"categorical"``) the methods to calibrate;
            default the production deciding methods (Wasserstein, Jensen-Shannon).
        chunks: how many chunks to score (at most ``row_count // chunk_rows``).
        chunk_rows: rows per chunk, ideally the production window size; default
            ``row_count // (chunks + 1)`` so the rest stays larger than a chunk.

    Feed the result to ``DriftConfig(feature_thresholds=as_feature_thresholds(...))``.
    """
    methods = methods or {"numeric": ("wasserstein",), "categorical": ("jensen_shannon",)}
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"quantile must be in (0, 1), got {quantile}")
    size = chunk_rows or baseline.row_count // (chunks + 1)
    chunks = min(chunks, baseline.row_count // max(size, 1))
    if size < 1 or chunks < 2:
        raise ValueError("the baseline is too small for two chunks of that size")
    out = []
    for profile in baseline.features:
        if profile.count == 0:
            continue
        for method in methods.get(profile.kind, ()):
            if method in P_VALUE_METHODS:
                continue
            scores = _scores(store, baseline, profile, method, size, chunks)
            if len(scores) < 2:
                continue
            threshold = float(np.quantile(scores, quantile))
            out.append(CalibratedThreshold(profile.name, method, threshold, size, tuple(scores)))
    return out


def as_feature_thresholds(calibrated: list[CalibratedThreshold]) -> dict[str, dict[str, float]]:
    """``DriftConfig.feature_thresholds`` from calibrated thresholds."""
    out: dict[str, dict[str, float]] = {}
    for item in calibrated:
        out.setdefault(item.feature, {})[item.method] = item.threshold
    return out


_STORED = (
    "SELECT feature, method, threshold, chunk_rows, scores FROM calibrated_thresholds FINAL "
    "WHERE baseline_id = {b:String} AND calibration = {c:String} ORDER BY feature, method"
)


def stored_calibration(
    store: Store,
    baseline: Baseline,
    methods: dict[str, tuple[str, ...]],
    *,
    chunks: int = 20,
    chunk_rows: int | None = None,
    quantile: float = 0.95,
) -> list[CalibratedThreshold]:
    """:func:`calibrate_thresholds`, kept in ``calibrated_thresholds`` per baseline and setting.

    A baseline never changes, so a calibration (76 s for 1M rows x 20 features at 20 chunks)
    runs once per setting; later calls, in this process or after a restart, read it back.
    """
    setting = {"methods": methods, "chunks": chunks, "chunk_rows": chunk_rows}
    key = json.dumps({**setting, "quantile": quantile}, sort_keys=True)
    params = {"b": baseline.baseline_id, "c": key}
    rows = store.query(_STORED, params).to_pylist()
    if rows:
        return [
            CalibratedThreshold(
                str(r["feature"]),
                str(r["method"]),
                float(r["threshold"]),
                int(r["chunk_rows"]),
                tuple(float(x) for x in r["scores"]),
            )
            for r in rows
        ]
    found = calibrate_thresholds(
        store, baseline, methods, chunks=chunks, chunk_rows=chunk_rows, quantile=quantile
    )
    if found:
        table = pa.table(
            {
                "baseline_id": [baseline.baseline_id] * len(found),
                "calibration": [key] * len(found),
                "feature": [c.feature for c in found],
                "method": [c.method for c in found],
                "threshold": pa.array([c.threshold for c in found], pa.float64()),
                "chunk_rows": pa.array([c.chunk_rows for c in found], pa.uint64()),
                "scores": pa.array([list(c.scores) for c in found], pa.list_(pa.float64())),
            }
        )
        try:
            store.insert("calibrated_thresholds", table)
        except StoreError as exc:  # a store this process may only read: calibrate again next time
            _log.warning("calibrated thresholds not stored: %s", exc)
    return found
