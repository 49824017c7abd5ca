"""``kill -9`` of a server process loses no acknowledged record (spooled or stored)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import orjson

from keelwatch.store import EmbeddedStore

SERVER = r'''
import os, socket, sys
import uvicorn
from keelwatch.collector.server import ServerConfig, create_app
from keelwatch.store import EmbeddedStore, StoreUnavailable, migrate

data, flag = sys.argv[1], sys.argv[2]


class SwitchedStore:
    """Inserts fail while the flag file exists (a store outage)."""

    kind = "embedded"

    def __init__(self, inner):
        self.inner = inner

    def command(self, sql, params=None):
        self.inner.command(sql, params)

    def query(self, sql, params=None):
        return self.inner.query(sql, params)

    def insert(self, table, data, dedup_token=None):
        if os.path.exists(flag):
            raise StoreUnavailable("switched off")
        self.inner.insert(table, data, dedup_token)

    def close(self):
        self.inner.close()


inner = EmbeddedStore(data)
migrate(inner)
sock = socket.socket()
sock.bind(("127.0.0.1", 0))
print(sock.getsockname()[1], flush=True)
config = ServerConfig(data_dir=data, spool_dir=data + "-spool", detect_interval_s=0,
                      spool_retry_s=0.1)
app = create_app(config, store=SwitchedStore(inner))
uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])
'''


class Server:
    def __init__(self, script: Path, data: Path, flag: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(script), str(data), str(flag)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.url = f"http://127.0.0.1:{int(self.process.stdout.readline())}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)  # waiting for another process to bind: nothing to inject
        raise RuntimeError("server did not start")

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        assert self.process.stdout is not None
        self.process.stdout.close()


def body(prefix: str, n: int = 100) -> bytes:
    now = time.time()
    records = [
        {"prediction_id": f"{prefix}-{i}", "model": "m", "ts": now, "features": {"x": i}}
        for i in range(n)
    ]
    return orjson.dumps({"records": records})


def post_until_killed(url: str, prefix: str, acked: list[str], started: threading.Event) -> None:
    with httpx.Client(base_url=url, timeout=10) as client:
        for batch in range(10_000):
            name = f"{prefix}{batch}"
            try:
                answer = client.post("/v1/predictions", content=body(name))
            except httpx.TransportError:
                return
            if answer.status_code == 200:
                acked.extend(f"{name}-{i}" for i in range(100))
            started.set()


def test_kill_9_loses_nothing_acknowledged(tmp_path: Path) -> None:
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    data, flag = tmp_path / "data", tmp_path / "store-down"
    acked: list[str] = []

    # 1. The store is down: batches are acknowledged from the spool; then kill -9.
    flag.touch()
    server = Server(script, data, flag)
    for batch in range(5):
        answer = httpx.post(server.url + "/v1/predictions", content=body(f"down{batch}"))
        assert answer.status_code == 200
        acked.extend(f"down{batch}-{i}" for i in range(100))
    server.kill()

    # 2. The store is back: the spool replays while new batches stream in; kill -9 mid-stream.
    flag.unlink()
    server = Server(script, data, flag)
    started = threading.Event()
    sender = threading.Thread(target=post_until_killed, args=(server.url, "up", acked, started))
    sender.start()
    assert started.wait(30)
    while len(acked) < 1500:
        sender.join(0.01)
    server.kill()
    sender.join(30)

    # 3. A fresh start finishes any replay; then every acknowledged id is in the store, once.
    server = Server(script, data, flag)
    try:
        deadline = time.monotonic() + 30
        while httpx.get(server.url + "/readyz").json()["spooled_bytes"]:
            assert time.monotonic() < deadline, "spool not replayed"
            time.sleep(0.05)
    finally:
        server.kill()
    store = EmbeddedStore(data)
    try:
        ids = store.query("SELECT prediction_id FROM predictions FINAL").column("prediction_id")
        stored = ids.to_pylist()
    finally:
        store.close()
    missing = set(acked) - set(stored)
    prefixes = sorted({m.rsplit("-", 1)[0] for m in missing})
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged records lost: {prefixes}"
    assert len(stored) == len(set(stored))
