"""Arrow IPC bodies: the real server stores from them exactly what it stores from the JSON of
the same calls; pyarrow is used only when loaded or asked for; refusals fall back to JSON."""

from __future__ import annotations

import gzip
import math
import subprocess
import sys
import textwrap
import time

import pytest

from keelwatch.collector import ConfigError, HttpTransport, InMemoryTransport, SendResult
from keelwatch.collector._arrow import ARROW_STREAM, ArrowRows
from keelwatch.collector._config import Config
from keelwatch.collector._records import Converter
from keelwatch.collector._spec import MonitorSpec, RawCall

NOW = time.time()


def score(row):
    return 0.5


def classify(row):
    return [0.2, 0.8]


def fail(row):
    raise ValueError("boom")


def calls() -> list[RawCall]:
    """Calls of several shapes: two feature sets, NaN/inf/ints, an error, tags, class
    probabilities, a batch call, a string feature (JSON in both), an LLM-style dict output."""
    plain = MonitorSpec(score, "eq", version="1", slot="canary", tags={"region": "eu"})
    proba = MonitorSpec(classify, "eq", version="2", classes=("no", "yes"), tags={"region": "us"})
    errors = MonitorSpec(fail, "eq", tags={"region": "us", "tier": "gold"})
    llm = MonitorSpec(score, "eq", task="llm", tags={"region": "eu"})
    now = NOW
    out = []
    for i in range(40):
        row = {"a": i * 1.5, "b": i, "c": 1e300 * i}
        out.append(RawCall(plain, 10_000 + i, now - i, 0.001 * i, (row,), {}, 0.25 * i, None, None))
    odd = {"a": math.nan, "z": math.inf, "b": 2**60}
    out.append(RawCall(plain, 10_100, now, 0.002, (odd,), {}, 0.5, None, None))
    for i in range(5):
        out.append(
            RawCall(proba, 10_200 + i, now, 0.003, ({"x": float(i)},), {}, [0.2, 0.8], None, None)
        )
    boom = ValueError("boom")
    out.append(RawCall(errors, 10_300, now, 0.004, ({"x": 1.0},), {}, None, boom, None))
    rows = [{"p": 1.0, "q": 2.0}, {"p": 3.0}]
    out.append(RawCall(plain, 10_400, now, 0.005, (rows,), {}, [0.1, 0.9], None, None))
    out.append(RawCall(plain, 10_500, now, 0.006, ({"s": "text", "a": 1.0},), {}, 0.5, None, None))
    tokens = {"text": "hello", "prompt_tokens": 3, "completion_tokens": 5}
    out.append(RawCall(llm, 10_600, now, 0.007, ({"a": 2.0},), {}, tokens, None, None))
    return out


def bodies(arrow: bool) -> list[tuple[bytes, dict[str, str]]]:
    """Request bodies of ``calls()`` as the sender makes them (Arrow and/or gzip JSON)."""
    config = Config()
    converter = Converter(config, lambda reason, n: None)
    rows = converter.arrow = ArrowRows(config.max_record_bytes) if arrow else None
    records = [r for call in calls() for r in converter.call(call)]
    out = []
    if records:
        body = gzip.compress(b'{"records":[' + b",".join(records) + b"]}")
        out.append((body, {"Content-Type": "application/json", "Content-Encoding": "gzip"}))
    if rows is not None:
        # All but the string feature (it goes as JSON); tag names may differ between calls.
        assert len(rows) == 50
        out.append((rows.body(), {"Content-Type": ARROW_STREAM}))
    return out


COLUMNS = (
    "prediction_id, model, version, slot, ts, latency_ms, error, num, cat, out_label, out_value,"
    " out_proba, out_text, prompt_tokens, completion_tokens, tags, trace_id, span_id"
)


def test_arrow_and_json_bodies_store_the_same_rows(store, live_server):
    from keelwatch.collector.server import ServerConfig, create_app
    from keelwatch.store import Retention

    config = ServerConfig(detect_interval_s=0, retention=Retention(0, 0, 0))
    stored = {}
    with live_server(create_app(config, store=store)) as server:
        transport = HttpTransport(server.url)
        try:
            for arrow in (False, True):
                for body, headers in bodies(arrow):
                    answer = transport.send("/v1/predictions", body, headers)
                    assert answer.status == 200, answer.body
                    assert b'"rejected":[]' in answer.body.replace(b" ", b"")
                table = store.query(f"SELECT {COLUMNS} FROM predictions ORDER BY prediction_id")
                stored[arrow] = table.to_pylist()
                store.command("TRUNCATE TABLE predictions")
        finally:
            transport.close()
    assert len(stored[False]) == 51  # 50 calls, one of them a batch of 2 rows
    for arrow_row, json_row in zip(stored[True], stored[False], strict=True):
        assert arrow_row == json_row
    odd = next(r for r in stored[True] if r["prediction_id"].endswith("2774"))  # 10_100 in hex
    assert dict(odd["num"]) == {"b": float(2**60)}  # NaN and inf are missing, as in JSON


def test_auto_uses_arrow_only_once_pyarrow_is_loaded_and_never_imports_it():
    script = textwrap.dedent("""
        import sys
        sys.modules["pyarrow"] = None  # not installed
        import keelwatch.collector as sdk
        from keelwatch.collector._arrow import ARROW_STREAM
        transport = sdk.InMemoryTransport()
        client = sdk.Client(transport=transport, metrics_registry=False)
        client.monitor(model="m")(lambda x: x)(1.0)
        assert client.flush(5)
        assert transport.requests[0].headers["Content-Type"] == "application/json"
        try:
            sdk.Client(wire_format="arrow")
        except sdk.ConfigError as exc:
            assert "wire_format" in str(exc) and "pyarrow" in str(exc), exc
        else:
            raise AssertionError("wire_format='arrow' accepted without pyarrow")
        print("ok")
    """)
    out = subprocess.run(
        [sys.executable, "-c", script], check=True, capture_output=True, text=True, timeout=60
    )
    assert out.stdout.strip() == "ok"


def test_arrow_body_when_pyarrow_is_loaded(make_client):
    pytest.importorskip("pyarrow")
    transport = InMemoryTransport()
    client = make_client(transport=transport)  # wire_format="auto"
    f = client.monitor(model="m", version="3", tags={"t": "x"})(lambda row: 0.75)
    f({"a": 1.0, "b": 2})
    f({"a": "text"})  # not numeric: JSON
    assert client.flush(5)
    kinds = sorted(r.headers["Content-Type"] for r in transport.requests)
    assert kinds == ["application/json", ARROW_STREAM]
    arrow = next(r for r in transport.requests if r.arrow)
    assert "Content-Encoding" not in arrow.headers
    [record] = arrow.records()
    assert record["features"] == {"a": 1.0, "b": 2.0} and record["tags"] == {"t": "x"}
    assert record["model"] == "m" and record["version"] == "3"
    assert record["output"]["value"] == 0.75


def test_a_collector_refusing_arrow_gets_json_from_then_on(make_client):
    pytest.importorskip("pyarrow")
    transport = InMemoryTransport([SendResult(415)])
    client = make_client(transport=transport, wire_format="arrow")
    f = client.monitor(model="m")(lambda x: x)
    f(1.0)
    assert client.flush(5) is False  # that batch was refused for good (counted)
    f(2.0)
    assert client.flush(5)
    assert [r.arrow for r in transport.requests] == [True, False]
    assert client.stats().dropped == {"rejected": 1} and client.stats().sent == 1


def test_bad_wire_format_and_in_flight_are_refused():
    with pytest.raises(ConfigError, match="wire_format"):
        Config(wire_format="xml")
    with pytest.raises(ConfigError, match="max_in_flight"):
        Config(max_in_flight=0)
    with pytest.raises(ConfigError, match="max_in_flight"):
        Config(max_in_flight=1000)
