"""PCA reconstruction drift: keelwatch's SQL path against scikit-learn on rows pulled into pandas.

Both sides compute the same thing on the same stored data (a registered baseline and a window of
predictions, 20 correlated numeric features from a 5-factor model, a few values missing): the
scaler and PCA fitted on the whole baseline, the same fitted on the rest of each of 10 chunks,
every chunk's held-out mean error and the window's mean error. keelwatch runs
``reconstruction_drift`` (sums and errors in ClickHouse, numpy on 20 x 20 matrices); the
comparison pulls the baseline's and the window's rows into pandas and runs ``SimpleImputer``,
``StandardScaler`` and ``PCA(n_components=0.65)``. Printed: median of ``--repeat`` runs of each,
the ratio, peak RSS after each side (``ru_maxrss``, one process, so the second figure includes
the first), and the largest difference between the two sides' errors.

``--alarm-rate N`` instead checks N unshifted windows (each against its own fresh baseline) and
prints how many alarmed, with keelwatch's held-out thresholds and with NannyML's rule (chunk
errors from the PCA fitted on the whole baseline, the chunks included), computed on the same data.

    .venv/bin/python bench/reconstruction.py                      # 1M rows x 20 features
    .venv/bin/python bench/reconstruction.py --rows 100000
    .venv/bin/python bench/reconstruction.py --alarm-rate 400 --rows 5000 --window 500
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from keelwatch.detectors import Baseline, Window, register_baseline
from keelwatch.detectors._reconstruction import ReconstructionDrift, reconstruction_drift
from keelwatch.detectors._sql import WHERE_WINDOW
from keelwatch.store import EmbeddedStore, Store, migrate

SEED = 20260101
BATCH = 100_000
START = pd.Timestamp("2026-01-01", tz="UTC")


def generate(rng: np.random.Generator, rows: int, features: int) -> pd.DataFrame:
    """Correlated features: 5 shared factors plus noise, different scales, 1% missing."""
    loadings = np.random.default_rng(SEED).normal(size=(5, features))
    x = rng.normal(size=(rows, 5)) @ loadings + rng.normal(size=(rows, features))
    x = x * np.arange(1, features + 1) + 100.0
    x[rng.random(x.shape) < 0.01] = np.nan
    return pd.DataFrame(x, columns=[f"f{i:02d}" for i in range(features)])


def predictions(frame: pd.DataFrame, model: str, first: int) -> pa.Table:
    """Rows as ``predictions``, one microsecond apart, missing values left out of the map."""
    n = len(frame)
    values = frame.to_numpy(dtype=float)
    valid = np.isfinite(values)
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(valid.sum(axis=1), out=offsets[1:])
    columns = np.broadcast_to(np.arange(values.shape[1], dtype=np.int32), values.shape)[valid]
    keys = pa.DictionaryArray.from_arrays(columns, pa.array(list(frame.columns))).cast(pa.string())
    index = np.arange(first, first + n)
    return pa.table(
        {
            "project": pa.array(["default"] * n),
            "model": pa.array([model] * n),
            "prediction_id": pa.array(np.char.mod("p%09d", index)),
            "ts": pa.array(START + pd.to_timedelta(index, unit="us"), pa.timestamp("us", tz="UTC")),
            "num": pa.MapArray.from_arrays(pa.array(offsets), keys, pa.array(values[valid])),
        }
    )


def load(store: Store, model: str, ref: pd.DataFrame, cur: pd.DataFrame) -> tuple[Baseline, Window]:
    baseline = register_baseline(store, model, ref)
    for lo in range(0, len(cur), BATCH):
        store.insert("predictions", predictions(cur.iloc[lo : lo + BATCH], model, lo))
    start = START.to_pydatetime()
    return baseline, Window(model, start, start + timedelta(seconds=len(cur) / 1e6 + 1))


def pull(store: Store, baseline: Baseline, window: Window, names: list[str]) -> tuple[Any, Any]:
    """The baseline's and the window's rows as data frames (NaN where missing)."""
    long = store.query(
        "SELECT row, indexOf({names:Array(String)}, feature) - 1 AS j, value FROM baseline_values "
        "WHERE baseline_id = {b:String}",
        {"b": baseline.baseline_id, "names": names},
    )
    ref = np.full((baseline.row_count, len(names)), np.nan)
    ref[long["row"].to_numpy(), long["j"].to_numpy()] = long["value"].to_numpy()
    cur = store.query(
        "SELECT arrayMap(n -> if(mapContains(num, n), num[n], nan), {names:Array(String)}) AS x "
        f"FROM predictions WHERE {WHERE_WINDOW}",
        {**window.params(), "names": names},
    )
    flat = cur["x"].combine_chunks().flatten().to_numpy(zero_copy_only=False)
    return pd.DataFrame(ref, columns=names), pd.DataFrame(
        flat.reshape(-1, len(names)), columns=names
    )


def sklearn_errors(
    ref: pd.DataFrame, cur: pd.DataFrame, chunks: int = 10, in_sample: bool = False
) -> tuple[np.ndarray, float]:
    """Held-out chunk mean errors (or NannyML's in-sample ones) and the window's mean error."""
    from sklearn.decomposition import PCA
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import StandardScaler

    def fit(x: np.ndarray) -> Any:
        scaler = StandardScaler().fit(x)
        return scaler, PCA(n_components=0.65, svd_solver="full").fit(scaler.transform(x))

    def error(model: Any, x: np.ndarray) -> float:
        scaler, pca = model
        z = scaler.transform(x)
        return float(np.linalg.norm(z - pca.inverse_transform(pca.transform(z)), axis=1).mean())

    imputer = SimpleImputer(strategy="mean").fit(ref)
    x = imputer.transform(ref)
    whole = fit(x)
    size = len(x) // chunks
    bounds = [(j * size, len(x) if j == chunks - 1 else (j + 1) * size) for j in range(chunks)]
    held = [
        error(whole if in_sample else fit(np.delete(x, np.s_[lo:hi], axis=0)), x[lo:hi])
        for lo, hi in bounds
    ]
    return np.array(held), error(whole, imputer.transform(cur))


def timing(args: argparse.Namespace) -> None:
    rng = np.random.default_rng(SEED)
    ref, cur = generate(rng, args.rows, args.features), generate(rng, args.rows, args.features)
    with tempfile.TemporaryDirectory() as tmp:
        store = EmbeddedStore(f"{tmp}/store")
        try:
            migrate(store)
            t0 = time.perf_counter()
            baseline, window = load(store, "bench", ref, cur)
            print(f"{args.rows} rows x {args.features}: loaded in {time.perf_counter() - t0:.1f} s")
            del ref, cur
            ours: list[float] = []
            result: ReconstructionDrift | None = None
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                result = reconstruction_drift(store, baseline, window)
                ours.append(time.perf_counter() - t0)
            assert result is not None
            rss_ours = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            theirs, pulls = [], []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                ref_rows, cur_rows = pull(store, baseline, window, list(result.features))
                pulls.append(time.perf_counter() - t0)
                chunk_errors, mean_error = sklearn_errors(ref_rows, cur_rows)
                theirs.append(time.perf_counter() - t0)
                del ref_rows, cur_rows
            rss_theirs = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        finally:
            store.close()
    diff = max(
        abs(mean_error - result.mean_error),
        float(np.abs(chunk_errors - np.array(result.chunk_errors)).max()),
    )
    a, b = statistics.median(ours), statistics.median(theirs)
    print(f"keelwatch SQL  median {a:.2f} s  runs {', '.join(f'{t:.2f}' for t in ours)}")
    print(
        f"sklearn pandas median {b:.2f} s  runs {', '.join(f'{t:.2f}' for t in theirs)}"
        f"  (pulling rows: median {statistics.median(pulls):.2f} s)"
    )
    print(f"ratio sklearn / keelwatch: {b / a:.1f}x")
    print(f"peak RSS after keelwatch {rss_ours:.0f} MB, after sklearn {rss_theirs:.0f} MB")
    print(f"components {result.components}, max |error diff| {diff:.2e}")


def alarm_rate(args: argparse.Namespace) -> None:
    ours = nannyml = 0
    with tempfile.TemporaryDirectory() as tmp:
        store = EmbeddedStore(f"{tmp}/store")
        try:
            migrate(store)
            for seed in range(args.alarm_rate):
                rng = np.random.default_rng(seed)
                ref = generate(rng, args.rows, args.features)
                cur = generate(rng, args.window, args.features)
                baseline, window = load(store, f"m{seed}", ref, cur)
                result = reconstruction_drift(store, baseline, window)
                assert result is not None
                ours += result.drifted
                chunk_errors, mean_error = sklearn_errors(ref, cur, in_sample=True)
                spread = chunk_errors.std(ddof=1) * np.sqrt(result.chunk_rows / result.n_rows)
                nannyml += abs(mean_error - chunk_errors.mean()) > 3 * spread
        finally:
            store.close()
    n = args.alarm_rate
    print(f"{n} unshifted windows of {args.window} rows, baselines of {args.rows} rows:")
    print(f"  held-out chunks (keelwatch): {ours} alarms ({ours / n:.1%})")
    print(f"  in-sample chunks (NannyML):  {nannyml} alarms ({nannyml / n:.1%})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="baseline rows")
    parser.add_argument("--window", type=int, default=0, help="window rows (default: --rows)")
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--alarm-rate", type=int, default=0, metavar="N")
    args = parser.parse_args()
    args.window = args.window or args.rows
    if args.alarm_rate:
        alarm_rate(args)
    else:
        timing(args)


if __name__ == "__main__":
    main()
