"""Drift detection, keelwatch (in ClickHouse) against Evidently 0.7's DataDriftPreset (pandas).

Both tools see the same generated reference and current data, written once to two parquet files;
each step runs in its own subprocess and starts from those files or the store, as its users
would:

- **evidently**: reads both files into pandas and runs ``DataDriftPreset`` (timed: the run).
- **keelwatch load**: what happens before any detection, as traffic arrives: the reference file
  registered as a baseline (its profile computed once, in SQL), the current rows written as
  predictions into a fresh embedded store in 100,000-row batches (what the collector does),
  then the engine's background merges of the new parts waited for (as they run on a server
  between inserts and a scheduled detection; detecting beside them took about 1.4x as long).
- **keelwatch detect**: a fresh process opens that store and runs drift on the window against
  the stored profile with ``DriftConfig.evidently()`` (Evidently's test choice, binning and
  thresholds): the step that is repeated for every window and model. It then runs it again in
  the same process ("warm", as the server's scheduler runs it with the engine loaded); memory
  figures are those of the first, cold run. The process imports only keelwatch's detectors and
  store before it starts (pandas arrives with pyarrow's first conversion to Python values).

Printed per step: wall time, peak RSS (``VmHWM``) and how much of it is above the imported
tool (chDB maps about 270 MB of engine code, file-backed pages that count in RSS), and peak
anonymous memory (``RssAnon`` sampled every 10 ms: heap and buffers, what the step allocated);
then the ratios, for detection and end to end (load + detect), and the largest absolute score
difference per method over all features.

    .venv/bin/python bench/drift_vs_evidently.py                 # 1M rows: numeric, then mixed
    .venv/bin/python bench/drift_vs_evidently.py --rows 100000 --case mixed
    .venv/bin/python bench/drift_vs_evidently.py --rows 100000 --method psi   # force one method
    .venv/bin/python bench/drift_vs_evidently.py --case numeric --current-rows 50000  # a window
    .venv/bin/python bench/drift_vs_evidently.py --case numeric --exact-budget 2000000  # memory
"""

from __future__ import annotations

import argparse
import importlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial

from _drift_data import generate, predictions_table, window
from _memory import AnonPeak, peak_rss_mb, status_mb
from _store import wait_for_merges

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


def run_evidently(data: str, method: str | None, rows: int, memory: Callable[[], dict]) -> dict:
    import pandas as pd
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
    return {**memory(), "seconds": seconds, "scores": scores}


def run_keelwatch_load(
    data: str, method: str | None, rows: int, memory: Callable[[], dict]
) -> dict:
    """What happens before detection, as traffic arrives: the baseline registered from its file
    (profile computed once), the current rows written as predictions."""
    import pyarrow.parquet as pq

    from keelwatch.detectors import register_baseline
    from keelwatch.store import EmbeddedStore, migrate

    store = EmbeddedStore(f"{data}/store")
    try:
        migrate(store)
        t0 = time.perf_counter()
        register_baseline(store, "bench", f"{data}/reference.parquet")
        t1 = time.perf_counter()
        written = 0
        for batch in pq.ParquetFile(f"{data}/current.parquet").iter_batches(BATCH):
            store.insert("predictions", predictions_table(batch.to_pandas(), written))
            written += batch.num_rows
        t2 = time.perf_counter()
        # The engine merges the new parts in the background over the next seconds, as a server
        # does between inserts and a scheduled detection. Waited for here (and timed as load),
        # so that detection is measured on the store at rest, not beside those merges.
        wait_for_merges(store)
        t3 = time.perf_counter()
    finally:
        store.close()
    times = {"register_s": t1 - t0, "insert_s": t2 - t1, "merge_s": t3 - t2}
    return {**memory(), **times, "rows": written}


def run_keelwatch(
    data: str,
    method: str | None,
    rows: int,
    memory: Callable[[], dict],
    exact_budget: int | None = None,
) -> dict:
    """Detection: a stored window against the stored baseline profile, in a fresh process
    (cold: as a one-shot ``keelwatch detect``), then again in the same process (warm: as the
    server's scheduler runs it, its engine already loaded; memory is that of the cold run)."""
    from keelwatch.detectors import DriftConfig, get_baseline, run_drift
    from keelwatch.store import EmbeddedStore

    if method:
        ours = METHOD_NAMES[method]
        cat = ("jensen_shannon",) if ours in ("ks", "wasserstein") else (ours,)
        config = DriftConfig(numeric_methods=(ours,), categorical_methods=cat, compat="evidently")
    else:
        config = DriftConfig.evidently()
    if exact_budget:
        config = replace(config, exact_budget=exact_budget)
    store = EmbeddedStore(f"{data}/store")
    try:
        baseline = get_baseline(store, "bench")
        assert baseline is not None
        t0 = time.perf_counter()
        run = run_drift(store, baseline, window(rows), config)  # type: ignore[arg-type]
        seconds = time.perf_counter() - t0
        out = memory()
        t0 = time.perf_counter()
        run_drift(store, baseline, window(rows), config)  # type: ignore[arg-type]
        warm = time.perf_counter() - t0
    finally:
        store.close()
    scores = {}
    for r in run.deciding:
        scores[r.feature] = [r.method, r.p_value if r.method in P_VALUE_METHODS else r.score]
    return {**out, "seconds": seconds, "warm_seconds": warm, "scores": scores}


#: What each tool imports before it sees data: its code is in the RSS too (chDB's engine
#: library alone maps about 200 MB), so the working memory is the peak minus this.
TOOL_MODULES = {
    "evidently": ("evidently", "evidently.presets"),
    "keelwatch-load": ("keelwatch.detectors", "keelwatch.store", "pyarrow.parquet", "chdb"),
    "keelwatch": ("keelwatch.detectors", "keelwatch.store", "chdb"),
}
#: Each worker returns its figures and ``memory()`` taken when its measured step ends.
WORKERS = {
    "evidently": run_evidently,
    "keelwatch-load": run_keelwatch_load,
    "keelwatch": run_keelwatch,
}


def worker(args: argparse.Namespace) -> None:
    for module in TOOL_MODULES[args.worker]:
        importlib.import_module(module)
    start_mb, start_anon = status_mb("VmRSS"), status_mb("RssAnon")
    anon = AnonPeak()

    def memory() -> dict:
        return {
            "start_rss_mb": start_mb,
            "peak_rss_mb": peak_rss_mb(),
            "start_anon_mb": start_anon,
            "peak_anon_mb": anon.stop(),
        }

    rows = max(args.rows, args.current_rows or 0)  # the window covers every current row
    run = WORKERS[args.worker]
    if args.worker == "keelwatch" and args.exact_budget:
        run = partial(run_keelwatch, exact_budget=args.exact_budget)
    out = run(args.data, args.method, rows, memory)
    print(json.dumps(out))


def _spawn(tool: str, args: argparse.Namespace) -> dict:
    command = [sys.executable, __file__, "--worker", tool, "--data", args.data]
    command += ["--rows", str(args.rows)]
    if args.current_rows:
        command += ["--current-rows", str(args.current_rows)]
    if args.method:
        command += ["--method", args.method]
    if args.exact_budget:
        command += ["--exact-budget", str(args.exact_budget)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="reference rows")
    parser.add_argument(
        "--current-rows",
        type=int,
        help="current (window) rows, default --rows; fewer is the usual production shape",
    )
    parser.add_argument("--features", type=int, default=20, help="numeric features")
    parser.add_argument(
        "--case",
        choices=("numeric", "mixed", "both"),
        default="both",
        help="numeric features only, numeric and categorical, or one after the other",
    )
    parser.add_argument(
        "--method", choices=sorted(METHOD_NAMES), help="force one method (Evidently's name)"
    )
    parser.add_argument(
        "--exact-budget",
        type=int,
        help="DriftConfig.exact_budget: values the exact pass holds at once (memory vs speed)",
    )
    parser.add_argument("--keelwatch-only", action="store_true", help="skip Evidently")
    parser.add_argument("--repeats", type=int, default=3, help="detection runs (medians shown)")
    parser.add_argument("--worker", choices=sorted(TOOL_MODULES), help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    for case in ("numeric", "mixed") if args.case == "both" else (args.case,):
        extra = ""
        if case == "mixed":
            extra = f", {args.features // 4} categorical and one 4-valued numeric"
        current = args.current_rows or args.rows
        sides = f"{args.rows:,} reference rows, {current:,} current rows"
        print(f"\ncase={case}: {sides}, {args.features} numeric{extra}")
        with tempfile.TemporaryDirectory() as data:
            ref, cur = generate(args.rows, args.features, case, args.current_rows)
            ref.to_parquet(f"{data}/reference.parquet")
            cur.to_parquet(f"{data}/current.parquet")
            del ref, cur
            args.data = data
            compare(args)


def _work(run: dict) -> float:
    return max(run["peak_rss_mb"] - run["start_rss_mb"], 1.0)


def _memory(run: dict) -> str:
    return (
        f"peak RSS {run['peak_rss_mb']:6.0f} MB ({_work(run):.0f} above the imported tool's "
        f"{run['start_rss_mb']:.0f}), peak anonymous {run['peak_anon_mb']:6.0f} MB"
    )


def compare(args: argparse.Namespace) -> None:
    load = _spawn("keelwatch-load", args)
    runs = [_spawn("keelwatch", args) for _ in range(args.repeats)]
    # The median run of each figure (detection is cheap enough to repeat; Evidently runs once).
    kw = {key: statistics.median(r[key] for r in runs) for key in runs[0] if key != "scores"}
    kw["scores"] = runs[0]["scores"]
    loading = load["register_s"] + load["insert_s"] + load["merge_s"]
    total = loading + kw["seconds"]
    print(
        f"keelwatch load    {loading:8.2f} s  (register baseline {load['register_s']:.2f} s, "
        f"insert predictions {load['insert_s']:.2f} s, merge {load['merge_s']:.2f} s)  "
        f"{_memory(load)}"
    )
    times = ", ".join(f"{r['seconds']:.2f}" for r in runs)
    warm = ", ".join(f"{r['warm_seconds']:.2f}" for r in runs)
    print(
        f"keelwatch detect  {kw['seconds']:8.2f} s  {_memory(kw)}  (medians of {args.repeats} "
        f"fresh processes; times {times} s)"
    )
    print(
        f"keelwatch detect, warm {kw['warm_seconds']:5.2f} s  (the same window again in each "
        f"process, its engine loaded, as the server's scheduler runs it; times {warm} s)"
    )
    if args.keelwatch_only:
        return
    ev = _spawn("evidently", args)
    print(f"evidently         {ev['seconds']:8.2f} s  {_memory(ev)}")
    heaviest = max(load["peak_rss_mb"], kw["peak_rss_mb"])
    heaviest_anon = max(load["peak_anon_mb"], kw["peak_anon_mb"])
    print(
        f"ratio  detection {ev['seconds'] / kw['seconds']:.1f}x faster (warm "
        f"{ev['seconds'] / kw['warm_seconds']:.1f}x), end to end (load + detect) "
        f"{ev['seconds'] / total:.1f}x faster"
    )
    print(
        f"ratio  memory keelwatch/evidently, detection: peak RSS "
        f"{kw['peak_rss_mb'] / ev['peak_rss_mb']:.2f}, anonymous "
        f"{kw['peak_anon_mb'] / ev['peak_anon_mb']:.2f}; heavier of load and detection: peak RSS "
        f"{heaviest / ev['peak_rss_mb']:.2f}, anonymous {heaviest_anon / ev['peak_anon_mb']:.2f} "
        f"(goal <= 0.25)"
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
