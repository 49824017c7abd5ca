"""On-disk spool: nothing lost and nothing doubled across collector outages and restarts."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from keelwatch.collector._transport import Request


def test_spool_survives_collector_restart_and_client_restart(tmp_path, make_client, make_collector):
    server = make_collector()
    port = int(server.url.rsplit(":", 1)[1])
    # One request in flight: replayed batches then arrive in the order they were written.
    options = {"endpoint": server.url, "transport": None, "spool_dir": tmp_path,
               "max_backoff": 0.05, "batch_size": 10, "max_in_flight": 1}  # fmt: skip
    first = make_client(**options)
    f = first.monitor(model="spool")(lambda x: x)
    for i in range(50):
        f(i)
    assert first.flush(5)
    assert not list(tmp_path.glob("*.gz"))  # acknowledged batches are deleted

    server.stop()  # the collector goes away
    for i in range(50, 120):
        f(i)
    assert first.flush(0.5) is False
    first.shutdown()  # the service restarts while the collector is down
    assert len(list(tmp_path.glob("*.gz"))) == 7
    assert {f.stat().st_mode & 0o777 for f in tmp_path.glob("*.gz")} == {0o600}

    server = make_collector(port)  # the collector comes back on the same address
    second = make_client(**options)
    assert second.flush(5)
    xs = [r["features"]["x"] for r in server.records()]
    assert xs == list(range(50, 120))  # replayed in order, each once
    assert set(server.ids.values()) == {1}
    assert not list(tmp_path.glob("*.gz"))


def test_spool_replays_what_a_crashed_process_left(tmp_path, collector):
    script = textwrap.dedent(f"""
        import os
        from keelwatch.collector import Client
        client = Client(endpoint="http://127.0.0.1:9", spool_dir={str(tmp_path)!r},
                        batch_size=8, metrics_registry=False, max_backoff=0.05)
        f = client.monitor(model="crash")(lambda x: x)
        for i in range(40):
            f(i)
        assert client.flush(0.5) is False  # batches are on disk, the collector unreachable
        os._exit(0)  # a crash: no atexit, no final send
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    assert len(list(tmp_path.glob("*.gz"))) == 5

    from keelwatch.collector import Client

    client = Client(endpoint=collector.url, spool_dir=tmp_path, metrics_registry=False)
    try:
        client.monitor(model="crash")(lambda x: x)(40)
        assert client.flush(5)
    finally:
        client.shutdown()
    # Two requests in flight: batches may arrive in either order, each whole and in order.
    xs = [r["features"]["x"] for r in collector.records()]
    assert sorted(xs) == list(range(41))
    for _, headers, body in collector.requests:
        batch = [r["features"]["x"] for r in Request("", body, headers).records()]
        assert batch == sorted(batch)
    assert set(collector.ids.values()) == {1}
