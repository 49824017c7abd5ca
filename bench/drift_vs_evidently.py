"""Drift detection, keelwatch (in ClickHouse) against Evidently 0.7's DataDriftPreset (pandas).

Both tools see the same generated reference and current data, written once to two parquet files;
each tool runs in its own subprocess and starts from those files, as its users would: Evidently
reads both into pandas and runs ``DataDriftPreset``; keelwatch registers the reference file as a
baseline, writes the current rows as predictions into a fresh embedded store in 100,000-row
batches (what the collector does as traffic arrives), then runs drift with
``DriftConfig.evidently()`` (Evidently's test choice, binning and thresholds). Printed per case:
wall times (keelwatch split into baseline registration, prediction insert and detection), peak
RSS of each subprocess (``ru_maxrss``), ratios, and the largest absolute score difference per
method over all features.

    .venv/bin/python bench/drift_vs_evidently.py                 # 1M rows x 20 numeric
    .venv/bin/python bench/drift_vs_evidently.py --rows 100000 --case mixed
    .venv/bin/python bench/drift_vs_evidently.py --rows 100000 --method psi   # force one method
"""

from __future__ import annotations

import argparse
import importlib
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import timedelta

import numpy as np
import pandas as pd

SEED = 20260101
BATCH = 100_000
# Evidently's display names -> keelwatch's method names.
EVIDENTLY_NAMES = {
    "Wasserstein distance (normed)": "wasserstein",
    "Jensen-Shannon distance": "jensen_shannon",
    "PSI": "psi",
    "Kullback-Leibler divergence": "kl_div",
    "Hellinger distance": "hellinger",
    "K-S p_value": "ks",
    "chi-square p_value": "chi_square",
    "Z-test p_value": "z_test",
}
P_VALUE_METHODS = {"ks", "chi_square", "z_test"}
# Evidently's method names (for --method) -> keelwatch's.
METHOD_NAMES = {
    "psi": "psi",
    "kl_div": "kl_div",
    "jensenshannon": "jensen_shannon",
    "hellinger": "hellinger",
    "wasserstein": "wasserstein",
    "ks": "ks",
    "chisquare": "chi_square",
    "z": "z_test",
}


def generate(rows: int, features: int, case: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reference and current frames; every fourth numeric feature shifts, every fifth scales."""
    rng = np.random.default_rng(SEED)
    ref, cur = {}, {}
    for i in range(features):
        name = f"f{i:02d}"
        ref[name] = rng.normal(size=rows)
        shift = 0.25 if i % 4 == 0 else 0.0
        scale = 1.5 if i % 5 == 0 else 1.0
        cur[name] = rng.normal(shift, scale, size=rows)
    if case == "mixed":
        for i in range(features // 4):
            name = f"c{i:02d}"
            cats = np.array([f"v{j}" for j in range(3 + i)])
            p = np.linspace(1.0, 2.0, cats.size)
            ref[name] = rng.choice(cats, rows, p=p / p.sum())
            q = p[::-1] if i % 2 else p
            cur[name] = rng.choice(cats, rows, p=q / q.sum())
        ref["few"] = rng.integers(0, 4, rows).astype(float)
        cur["few"] = rng.integers(0, 5, rows).astype(float)
    return pd.DataFrame(ref), pd.DataFrame(cur)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_evidently(data: str, method: str | None) -> dict:
    from evidently import Report
    from evidently.presets import DataDriftPreset

    ref, cur = (
        pd.read_parquet(f"{data}/reference.parquet"),
        pd.read_parquet(f"{data}/current.parquet"),
    )
    preset = DataDriftPreset(num_method=method, cat_method=method) if method else DataDriftPreset()
    start = time.perf_counter()
    snapshot = Report([preset]).run(cur, ref)
    seconds = time.perf_counter() - start
    scores = {}
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if config.get("type") == "evidently:metric_v2:ValueDrift":
            name = config["method"]  # a display name by default, the method's name if forced
            method = EVIDENTLY_NAMES.get(name) or METHOD_NAMES[name]
            scores[config["column"]] = [method, float(metric["value"])]
    return {"seconds": seconds, "scores": scores}


def _map(names: list[str], values: np.ndarray, item: object) -> object:
    import pyarrow as pa

    n, k = values.shape
    columns = pa.array(np.tile(np.arange(k, dtype=np.int32), n))
    keys = pa.DictionaryArray.from_arrays(columns, pa.array(names)).cast(pa.string())
    offsets = pa.array(np.arange(0, n * k + 1, k, dtype=np.int32))
    return pa.MapArray.from_arrays(offsets, keys, pa.array(values.ravel(), item))


def predictions_table(frame: pd.DataFrame, first: int = 0) -> object:
    """Current rows as ``predictions`` (what the ingest API writes), built without Python loops."""
    import pyarrow as pa

    n = len(frame)
    numeric = [c for c in frame.columns if frame[c].dtype != object]
    categorical = [c for c in frame.columns if frame[c].dtype == object]
    index = np.arange(first, first + n)
    ts = pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(index, unit="us")
    ids = pa.array(np.char.mod("p%09d", index))
    cat = (
        _map(categorical, frame[categorical].to_numpy(dtype=object), pa.string())
        if categorical
        else pa.array([[] for _ in range(n)], pa.map_(pa.string(), pa.string()))
    )
    return pa.table(
        {
            "project": pa.array(["default"] * n),
            "model": pa.array(["bench"] * n),
            "prediction_id": ids,
            "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
            "num": _map(numeric, frame[numeric].to_numpy(dtype=float), pa.float64()),
            "cat": cat,
        }
    )


def run_keelwatch(data: str, method: str | None) -> dict:
    import pyarrow.parquet as pq

    from keelwatch.detectors import DriftConfig, Window, register_baseline, run_drift
    from keelwatch.store import EmbeddedStore, migrate

    with tempfile.TemporaryDirectory() as tmp:
        store = EmbeddedStore(f"{tmp}/store")
        try:
            migrate(store)
            t0 = time.perf_counter()
            baseline = register_baseline(store, "bench", f"{data}/reference.parquet")
            t1 = time.perf_counter()
            rows = 0
            for batch in pq.ParquetFile(f"{data}/current.parquet").iter_batches(BATCH):
                store.insert("predictions", predictions_table(batch.to_pandas(), rows))
                rows += batch.num_rows
            t2 = time.perf_counter()
            start = pd.Timestamp("2026-01-01", tz="UTC").to_pydatetime()
            window = Window("bench", start, start + timedelta(seconds=rows / 1e6 + 1))
            if method:
                ours = METHOD_NAMES[method]
                cat = ("jensen_shannon",) if ours in ("ks", "wasserstein") else (ours,)
                config = DriftConfig(
                    numeric_methods=(ours,), categorical_methods=cat, compat="evidently"
                )
            else:
                config = DriftConfig.evidently()
            run = run_drift(store, baseline, window, config)
            t3 = time.perf_counter()
        finally:
            store.close()
    scores = {}
    for r in run.deciding:
        scores[r.feature] = [r.method, r.p_value if r.method in P_VALUE_METHODS else r.score]
    return {
        "seconds": t3 - t0,
        "register_s": t1 - t0,
        "insert_s": t2 - t1,
        "detect_s": t3 - t2,
        "scores": scores,
    }


#: What each tool imports before it sees data: its code is in the RSS too (chDB's engine
#: library alone maps about 200 MB), so the working memory is the peak minus this.
TOOL_MODULES = {
    "evidently": ("evidently", "evidently.presets"),
    "keelwatch": ("keelwatch.detectors", "keelwatch.store", "pyarrow.parquet", "chdb"),
}


def _current_rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def worker(args: argparse.Namespace) -> None:
    for module in TOOL_MODULES[args.worker]:
        importlib.import_module(module)
    start_mb = _current_rss_mb()
    run = run_evidently if args.worker == "evidently" else run_keelwatch
    out = run(args.data, args.method)
    out.update({"start_rss_mb": start_mb, "peak_rss_mb": _rss_mb()})
    print(json.dumps(out))


def _spawn(tool: str, args: argparse.Namespace) -> dict:
    command = [sys.executable, __file__, "--worker", tool, "--data", args.data]
    if args.method:
        command += ["--method", args.method]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows per side")
    parser.add_argument("--features", type=int, default=20, help="numeric features")
    parser.add_argument("--case", choices=("numeric", "mixed"), default="numeric")
    parser.add_argument(
        "--method", choices=sorted(METHOD_NAMES), help="force one method (Evidently's name)"
    )
    parser.add_argument("--keelwatch-only", action="store_true", help="skip Evidently")
    parser.add_argument("--worker", choices=("evidently", "keelwatch"), help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    print(f"case={args.case} rows={args.rows:,} per side, {args.features} numeric features")
    with tempfile.TemporaryDirectory() as data:
        ref, cur = generate(args.rows, args.features, args.case)
        ref.to_parquet(f"{data}/reference.parquet")
        cur.to_parquet(f"{data}/current.parquet")
        del ref, cur
        args.data = data
        compare(args)


def _work(run: dict) -> float:
    return max(run["peak_rss_mb"] - run["start_rss_mb"], 1.0)


def compare(args: argparse.Namespace) -> None:
    kw = _spawn("keelwatch", args)
    print(
        f"keelwatch  {kw['seconds']:8.2f} s  (register baseline {kw['register_s']:.2f} s, "
        f"insert predictions {kw['insert_s']:.2f} s, detect {kw['detect_s']:.2f} s)  "
        f"peak RSS {kw['peak_rss_mb']:7.0f} MB, {_work(kw):.0f} MB above the imported tool "
        f"({kw['start_rss_mb']:.0f} MB)"
    )
    if args.keelwatch_only:
        return
    ev = _spawn("evidently", args)
    print(
        f"evidently  {ev['seconds']:8.2f} s  "
        f"peak RSS {ev['peak_rss_mb']:7.0f} MB, {_work(ev):.0f} MB above the imported tool "
        f"({ev['start_rss_mb']:.0f} MB)"
    )
    print(
        f"ratio      end to end {ev['seconds'] / kw['seconds']:.1f}x faster, "
        f"detection alone {ev['seconds'] / kw['detect_s']:.1f}x faster, "
        f"peak RSS evidently/keelwatch {ev['peak_rss_mb'] / kw['peak_rss_mb']:.2f}, "
        f"above the imported tools {_work(ev) / _work(kw):.2f}"
    )
    worst: dict[str, float] = {}
    for feature, (method, value) in ev["scores"].items():
        ours_method, ours = kw["scores"][feature]
        if ours_method != method:
            raise SystemExit(f"{feature}: keelwatch chose {ours_method}, Evidently {method}")
        worst[method] = max(worst.get(method, 0.0), abs(ours - value))
    for method, diff in sorted(worst.items()):
        print(f"max |score difference| {method:15s} {diff:.3g}")


if __name__ == "__main__":
    main()
