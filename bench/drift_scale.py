"""Drift and data quality over a 10M-row x 100-feature window, against one read of the data.

A fresh embedded store gets a baseline (``--reference-rows`` x ``--features`` numeric, registered
from a data frame) and a window of ``--rows`` predictions written in ``--chunk``-row batches as
the collector writes them (every fourth feature shifted by 0.25 std, every fifth scaled by 1.5).
Then, in a second process that only opens the store (so its peak RSS is the detectors' own):

- ``scan``: the physical floor, one query reading every feature value of the window once;
- ``drift``: ``run_drift`` with the default configuration (above ``exact_max_rows`` the numeric
  methods come from the one-pass fine grid, ``detectors/_grid.py``);
- ``detect``: every detector of ``detect()`` (drift, data quality, operations, outcomes).

Printed: load times, wall time and ratio to the scan, peak RSS of the detecting process, and
whether exactly the shifted/scaled features were flagged.

    .venv/bin/python bench/drift_scale.py                       # 10M x 100, ~10 min of loading
    .venv/bin/python bench/drift_scale.py --rows 1000000        # a quick look
    .venv/bin/python bench/drift_scale.py --keep /tmp/kw-scale  # load once, detect again later
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from _memory import peak_rss_mb
from _store import wait_for_merges

SEED = 20260102
START = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _names(features: int) -> list[str]:
    return [f"f{i:03d}" for i in range(features)]


def expected_flags(features: int) -> list[str]:
    return [n for i, n in enumerate(_names(features)) if i % 4 == 0 or i % 5 == 0]


def _chunk(rng: np.random.Generator, first: int, rows: int, features: int) -> pa.Table:
    shift = np.array([0.25 if i % 4 == 0 else 0.0 for i in range(features)])
    scale = np.array([1.5 if i % 5 == 0 else 1.0 for i in range(features)])
    values = rng.standard_normal((rows, features)) * scale + shift
    keys = pa.DictionaryArray.from_arrays(
        pa.array(np.tile(np.arange(features, dtype=np.int32), rows)), pa.array(_names(features))
    ).cast(pa.string())
    offsets = pa.array(np.arange(0, rows * features + 1, features, dtype=np.int32))
    index = np.arange(first, first + rows)
    return pa.table(
        {
            "project": pa.array(["default"] * rows),
            "model": pa.array(["scale"] * rows),
            "prediction_id": pa.array(np.char.mod("p%010d", index)),
            "ts": pa.array(
                pd.Timestamp(START) + pd.to_timedelta(index * 10, unit="us"),
                pa.timestamp("us", tz="UTC"),
            ),
            "latency_ms": pa.array(rng.gamma(2.0, 2.0, rows)),
            "num": pa.MapArray.from_arrays(offsets, keys, pa.array(values.ravel())),
        }
    )


def load(args: argparse.Namespace) -> dict:
    from keelwatch.detectors import register_baseline
    from keelwatch.store import EmbeddedStore, migrate

    rng = np.random.default_rng(SEED)
    store = EmbeddedStore(args.store)
    try:
        migrate(store)
        t0 = time.perf_counter()
        reference = pd.DataFrame(
            rng.standard_normal((args.reference_rows, args.features)), columns=_names(args.features)
        )
        register_baseline(store, "scale", reference)
        del reference
        t1 = time.perf_counter()
        for first in range(0, args.rows, args.chunk):
            rows = min(args.chunk, args.rows - first)
            store.insert("predictions", _chunk(rng, first, rows, args.features))
        t2 = time.perf_counter()
        # As a server does between inserts and a scheduled detection, the engine merges the
        # new parts; waited for (and timed) here so that detection meets the store at rest.
        wait_for_merges(store)
        t3 = time.perf_counter()
    finally:
        store.close()
    return {"register_s": t1 - t0, "insert_s": t2 - t1, "merge_s": t3 - t2}


def _timed(fn: object) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()  # type: ignore[operator]
    return time.perf_counter() - start, out


def detect_worker(args: argparse.Namespace) -> dict:
    from keelwatch.detectors import detect, get_baseline, run_drift
    from keelwatch.detectors._sql import WHERE_WINDOW, Window
    from keelwatch.store import EmbeddedStore

    store = EmbeddedStore(args.store)
    try:
        window = Window("scale", START, START + timedelta(microseconds=10 * args.rows + 1))
        baseline = get_baseline(store, "scale")
        assert baseline is not None
        opened_mb = peak_rss_mb()
        scan_s, _ = _timed(
            lambda: store.query(
                "SELECT count() AS n, sum(arraySum(mapValues(num))) AS s "
                f"FROM predictions WHERE {WHERE_WINDOW}",
                window.params(),
            )
        )
        drift_s, run = _timed(lambda: run_drift(store, baseline, window))
        detect_s, _ = _timed(lambda: detect(store, "scale", window.start, window.end))
    finally:
        store.close()
    flagged = sorted(r.feature for r in run.drifted_features)  # type: ignore[attr-defined]
    return {
        "scan_s": scan_s,
        "drift_s": drift_s,
        "detect_s": detect_s,
        "opened_rss_mb": opened_mb,
        "peak_rss_mb": peak_rss_mb(),
        "n_current": run.n_current,  # type: ignore[attr-defined]
        "flagged": flagged,
    }


def _spawn(step: str, args: argparse.Namespace, store: str) -> dict:
    command = [sys.executable, __file__, "--step", step, "--store", store]
    command += ["--rows", str(args.rows), "--features", str(args.features)]
    command += ["--reference-rows", str(args.reference_rows), "--chunk", str(args.chunk)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{step} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="window rows")
    parser.add_argument("--features", type=int, default=100)
    parser.add_argument("--reference-rows", type=int, default=1_000_000)
    parser.add_argument("--chunk", type=int, default=500_000, help="rows per insert")
    parser.add_argument("--repeat", type=int, default=3, help="detection runs (median)")
    parser.add_argument("--step", choices=("load", "detect"), help=argparse.SUPPRESS)
    parser.add_argument("--store", help=argparse.SUPPRESS)
    parser.add_argument(
        "--keep", metavar="DIR", help="keep the loaded store in DIR and reuse it when it exists"
    )
    args = parser.parse_args()
    if args.step:
        print(json.dumps(load(args) if args.step == "load" else detect_worker(args)))
        return
    print(
        f"window {args.rows:,} rows x {args.features} numeric features, "
        f"baseline {args.reference_rows:,} rows"
    )
    with tempfile.TemporaryDirectory() as tmp:
        store = f"{args.keep}/store" if args.keep else f"{tmp}/store"
        if args.keep and Path(store).exists():
            print(f"reusing the store in {store}")
        else:
            loaded = _spawn("load", args, store)
            print(
                f"load: register baseline {loaded['register_s']:.1f} s, "
                f"insert window {loaded['insert_s']:.1f} s, merge {loaded['merge_s']:.1f} s"
            )
        runs = [_spawn("detect", args, store) for _ in range(args.repeat)]
    for key in ("scan_s", "drift_s", "detect_s", "peak_rss_mb"):
        print(f"  {key:12s} " + " ".join(f"{r[key]:8.2f}" for r in runs))
    median = {k: float(np.median([r[k] for r in runs])) for k in runs[0] if k != "flagged"}
    print(
        f"median: scan {median['scan_s']:.2f} s (one read of every value, the floor), "
        f"drift {median['drift_s']:.2f} s = {median['drift_s'] / median['scan_s']:.1f}x the scan, "
        f"all detectors {median['detect_s']:.2f} s; peak RSS {median['peak_rss_mb']:.0f} MB "
        f"(store opened: {median['opened_rss_mb']:.0f} MB)"
    )
    expected = expected_flags(args.features)
    flagged = runs[0]["flagged"]
    verdict = "exactly the shifted/scaled ones" if flagged == expected else f"MISMATCH: {flagged}"
    print(f"flagged {len(flagged)} of {args.features} features; {verdict}")


if __name__ == "__main__":
    main()
