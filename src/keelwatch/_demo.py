"""``keelwatch demo``: a model monitored end to end on the embedded store, in about a minute.

It starts ``keelwatch serve`` on a fresh embedded store, trains a classifier on scikit-learn's
breast-cancer data set, serves predictions through ``@monitor`` (normal traffic, then traffic
with covariate shift injected into two features and the request channel mix), runs the
detectors on both stretches, and receives the signed retraining webhook that the drift fires.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from keelwatch._cli_detect import format_detectors
from keelwatch._client import ServerClient
from keelwatch.alerts import verify

__all__ = ["FEATURES", "SHIFTED", "WebhookReceiver", "run_demo"]

MODEL = "breast-cancer"
FEATURES = (
    "mean radius",
    "mean texture",
    "mean smoothness",
    "mean compactness",
    "mean symmetry",
    "worst concavity",
    "worst fractal dimension",
)
#: The covariate shift injected in the second stretch of traffic.
SHIFTED = {"mean texture": 1.6, "worst concavity": 1.5}  # shift by this many reference stds
CHANNELS = ("web", "mobile", "partner")
CHANNEL_MIX = (0.6, 0.3, 0.1)
SHIFTED_CHANNEL_MIX = (0.2, 0.2, 0.6)
SECRET = "whsec_" + "a2VlbHdhdGNoLWRlbW8tc2VjcmV0LWtleQ=="


class WebhookReceiver:
    """A local HTTP endpoint standing in for a retraining pipeline; checks each signature."""

    def __init__(self, secret: str) -> None:
        self.received: queue.Queue[dict[str, Any]] = queue.Queue()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                receiver.received.put(
                    {
                        "path": self.path,
                        "verified": verify(secret, dict(self.headers), body),
                        "webhook_id": self.headers.get("webhook-id", ""),
                        "event": json.loads(body),
                    }
                )
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hooks/retrain"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_server(data: Path, port: int, rules: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "KEELWATCH_WEBHOOK_SECRET": SECRET}
    log = open(data / "server.log", "wb")  # noqa: SIM115 - lives as long as the server
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "keelwatch",
            "serve",
            "--data",
            str(data / "store"),
            "--port",
            str(port),
            "--rules",
            str(rules),
            "--detect-interval",
            "0",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )


def _dataset(seed: int) -> tuple[pd.DataFrame, pd.DataFrame, Any]:
    """Training data (the baseline), the pool requests are drawn from, and the fitted model."""
    from sklearn.compose import ColumnTransformer
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    data = load_breast_cancer(as_frame=True)
    frame = data.frame[list(FEATURES)].copy()
    rng = np.random.default_rng(seed)
    frame["channel"] = rng.choice(CHANNELS, size=len(frame), p=CHANNEL_MIX)
    train, _, y_train, _ = train_test_split(frame, data.target, test_size=0.3, random_state=seed)
    model = make_pipeline(
        ColumnTransformer(
            [
                ("num", StandardScaler(), list(FEATURES)),
                ("cat", OneHotEncoder(handle_unknown="ignore"), ["channel"]),
            ]
        ),
        LogisticRegression(max_iter=1000),
    )
    model.fit(train, y_train)
    return train, train, model


def _traffic(
    pool: pd.DataFrame, n: int, rng: np.random.Generator, reference: pd.DataFrame, shifted: bool
) -> list[dict[str, Any]]:
    rows = pool.iloc[rng.integers(0, len(pool), n)].reset_index(drop=True)
    for name in FEATURES:  # small measurement noise: requests are not copies of training rows
        rows[name] = rows[name] + rng.normal(0, 0.05 * reference[name].std(), n)
    if shifted:
        for name, stds in SHIFTED.items():
            rows[name] = rows[name] + stds * reference[name].std()
        rows["channel"] = rng.choice(CHANNELS, size=n, p=SHIFTED_CHANNEL_MIX)
    return rows.to_dict("records")


def run_demo(
    data: Path, port: int = 0, requests: int = 1500, seed: int = 7, console: Console | None = None
) -> int:
    """Run the demo; returns 0 when the injected drift was detected and the webhook received."""
    from keelwatch.collector import configure, flush, monitor, shutdown

    console = console or Console(width=None if sys.stdout.isatty() else 110)
    started = time.monotonic()
    if data.exists():
        shutil.rmtree(data)
    data.mkdir(parents=True)
    port = port or _free_port()
    url = f"http://127.0.0.1:{port}"
    receiver = WebhookReceiver(SECRET)
    rules = data / "rules.yaml"
    rules.write_text(
        "rules:\n"
        "  - name: retrain-on-drift\n"
        f"    model: {MODEL}\n"
        "    metric: drift_share\n"
        "    op: '>='\n"
        "    threshold: 0.25\n"
        "    action: retrain\n"
        f"    webhook: {receiver.url}\n"
        "    cooldown_s: 3600\n"
    )
    server = _start_server(data, port, rules)
    client = ServerClient(url)
    try:
        with console.status("starting keelwatch serve on the embedded store"):
            deadline = time.monotonic() + 60
            while not client.healthy():
                if server.poll() is not None or time.monotonic() > deadline:
                    console.print(f"[red]server did not start; see {data / 'server.log'}")
                    return 1
                time.sleep(0.2)
        console.print(f"[green]✓[/] server up at {url}, store in {data / 'store'}")

        with console.status("training a classifier on scikit-learn's breast-cancer data"):
            reference, pool, model = _dataset(seed)
            baseline = client.add_baseline(
                MODEL, reference.to_csv(index=False).encode(), "csv", "demo"
            )
        console.print(
            f"[green]✓[/] model trained; baseline v{baseline['version']} registered "
            f"({baseline['rows']} training rows, {len(baseline['features'])} features)"
        )

        configure(endpoint=url)

        @monitor(model=MODEL, version="1.0")
        def predict(features: dict[str, Any]) -> float:
            return float(model.predict_proba(pd.DataFrame([features]))[0, 1])

        rng = np.random.default_rng(seed)
        windows = []
        with Progress(
            TextColumn("{task.description:<34}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            for label, shifted in (
                ("normal traffic", False),
                ("traffic with covariate shift", True),
            ):
                rows = _traffic(pool, requests, rng, reference, shifted)
                task = progress.add_task(label, total=len(rows))
                start = datetime.now(timezone.utc)
                for i, row in enumerate(rows):
                    predict(row)
                    if i % 50 == 49:
                        progress.advance(task, 50)
                progress.update(task, completed=len(rows))
                flush(10.0)
                windows.append((label, start, datetime.now(timezone.utc)))
        shutdown()

        runs = []
        with console.status("running the drift detectors on both stretches"):
            for label, start, end in windows:
                runs.append((label, client.detect(MODEL, start.isoformat(), end.isoformat())))
        try:
            hook = receiver.received.get(timeout=15)
        except queue.Empty:
            hook = None
        return _summary(console, runs, hook, data, started)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        receiver.close()


def _score(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _summary(
    console: Console,
    runs: list[tuple[str, dict[str, Any]]],
    hook: dict[str, Any] | None,
    data: Path,
    started: float,
) -> int:
    stored = sum(run["n_current"] for _, run in runs)
    console.print(f"\n[bold]Predictions stored:[/] {stored}")
    for label, run in runs:
        table = Table(title=f"{label}: drift share {run['drift_share']:.2f}", title_justify="left")
        for column in ("feature", "method", "score", "threshold", "verdict", "also"):
            table.add_column(column)
        by_feature: dict[str, list[dict[str, Any]]] = {}
        for r in run["results"]:
            by_feature.setdefault(r["feature"], []).append(r)
        for feature, results in by_feature.items():
            main = next(r for r in results if r["deciding"])
            others = ", ".join(
                f"{r['method']} p={r['p_value']:.3g}"
                if r["p_value"] is not None
                else f"{r['method']} {_score(r['score'])}"
                for r in results
                if not r["deciding"]
            )
            verdict = "[red]DRIFT[/]" if main["drifted"] else "[green]ok[/]"
            table.add_row(
                feature,
                main["method"],
                _score(main["score"]),
                f"{main['threshold']:g}",
                verdict,
                others,
            )
        console.print(table)
        if run.get("detectors"):
            console.print(format_detectors(run["detectors"]), markup=False, highlight=False)
    shifted = runs[-1][1]
    flagged = {r["feature"] for r in shifted["results"] if r["deciding"] and r["drifted"]}
    expected = set(SHIFTED) | {"channel"}
    false_normal = {r["feature"] for r in runs[0][1]["results"] if r["deciding"] and r["drifted"]}
    alerts = shifted.get("alerts", [])
    for alert in alerts:
        console.print(f"[bold]Alert fired:[/] {alert['rule']}: {alert['summary']}")
    if hook:
        event = hook["event"]
        console.print(
            f"[bold]Webhook received:[/] {event['type']} at {hook['path']} "
            f"(id {hook['webhook_id']}, signature {'valid' if hook['verified'] else 'INVALID'}), "
            f"drifted: {', '.join(d['feature'] for d in event['data']['drifted_features'])}"
        )
    else:
        console.print("[red]No webhook received.")
    ok = flagged == expected and not false_normal and hook is not None and hook["verified"]
    console.print(
        f"\nInjected shift in {', '.join(sorted(expected))}; "
        f"flagged {', '.join(sorted(flagged)) or 'none'}"
        f" -> {'[green]detected as injected' if ok else '[red]mismatch'}[/] "
        f"in {time.monotonic() - started:.0f} s"
    )
    console.print(
        f"\nExplore it:  [bold]keelwatch serve --data {data / 'store'} &  keelwatch dashboard[/]"
    )
    return 0 if ok else 1
