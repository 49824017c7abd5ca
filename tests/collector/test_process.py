"""Process life: fork, exit, and what installing / importing the SDK pulls in."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import tomllib

import keelwatch.collector as sdk

HEAVY = ["chdb", "pandas", "numpy", "scipy", "streamlit", "pyarrow", "evidently", "polars"]
ROOT = Path(__file__).resolve().parents[2]


def test_forked_child_ships_its_records_and_parent_is_unaffected(collector, make_client):
    client = make_client(endpoint=collector.url, transport=None)
    f = client.monitor(model="fork")(lambda x: x)
    f(-1)
    assert client.flush(5)
    pid = os.fork()
    if pid == 0:  # child: a fresh queue and sender, new id prefix
        code = 1
        try:
            for i in range(5):
                f(i)
            code = 0 if client.flush(5) else 2
        finally:
            os._exit(code)
    f(100)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert client.flush(5)
    assert sorted(r["features"]["x"] for r in collector.records()) == [-1, 0, 1, 2, 3, 4, 100]
    assert len(collector.ids) == 7 and set(collector.ids.values()) == {1}


def test_records_are_flushed_at_exit(collector):
    script = textwrap.dedent(f"""
        from keelwatch.collector import configure, monitor
        configure(endpoint={collector.url!r}, flush_interval=60)

        @monitor(model="exit")
        def f(x):
            return x

        for i in range(25):
            f(i)
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    assert len(collector.ids) == 25


def test_importing_and_using_the_sdk_loads_no_heavy_module():
    script = textwrap.dedent(f"""
        import sys
        import keelwatch.collector as sdk
        client = sdk.Client(transport=sdk.InMemoryTransport())
        client.monitor(model="m")(lambda x: x)(1)
        client.flush(5)
        print(",".join(m for m in {HEAVY!r} if m in sys.modules))
    """)
    out = subprocess.run(
        [sys.executable, "-c", script], check=True, capture_output=True, text=True, timeout=60
    )
    assert out.stdout.strip() == ""


def test_install_requires_nothing_heavy():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = " ".join(project.get("dependencies", [])).lower()
    assert not [name for name in HEAVY if name in deps]


def test_all_is_sorted_and_complete():
    public = {
        name for name in dir(sdk)
        if not name.startswith("_") and getattr(getattr(sdk, name), "__module__", "").startswith(
            "keelwatch.collector."
        )
    }  # fmt: skip
    assert sdk.__all__ == sorted(sdk.__all__)
    assert set(sdk.__all__) == public
    for name in ("monitor", "configure", "log_outcome", "current_prediction_id", "flush",
                 "shutdown"):  # fmt: skip
        assert name in sdk.__all__


def test_pid_check_restarts_the_sender_after_an_unhooked_fork(make_client):
    pid = [1000]
    transport = sdk.InMemoryTransport()
    client = make_client(transport=transport, pid=lambda: pid[0], max_queue_size=4)
    f = client.monitor(model="m")(lambda x: x)
    f(0)
    assert client.flush(5)
    pid[0] = 1001  # as if forked without os.register_at_fork hooks running
    assert client.flush(5)  # a new sender for the new pid, with an empty queue
    for i in range(1, 4):
        f(i)
    assert client.flush(5)
    assert [r["features"]["x"] for r in transport.records()] == [0, 1, 2, 3]
