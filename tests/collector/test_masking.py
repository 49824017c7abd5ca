"""Masked fields never leave the process: checked on the bytes handed to the transport."""

from __future__ import annotations

import gzip

from keelwatch.collector import InMemoryTransport


def _sent_bytes(transport: InMemoryTransport) -> bytes:
    return b"".join(gzip.decompress(r.body) for r in transport.requests)


def test_deny_list_removes_features_tags_and_output_fields(make_client):
    transport = InMemoryTransport()
    client = make_client(transport=transport, deny=["ssn"])

    @client.monitor(model="m", deny=["email", "output.text"], tags={"ssn": "tag-secret"})
    def f(ssn, email, age):
        return "the reply mentions SECRET-REPLY"

    f("123-45-6789", "a@example.com", 41)
    assert client.flush(5)
    raw = _sent_bytes(transport)
    for secret in (b"123-45-6789", b"a@example.com", b"SECRET-REPLY", b"tag-secret", b"ssn"):
        assert secret not in raw
    [record] = transport.records()
    assert record["features"] == {"age": 41}


def test_allow_list_keeps_only_named_features(make_client):
    transport = InMemoryTransport()
    client = make_client(transport=transport, allow=["age"])
    client.monitor(model="m")(lambda row: 1)({"age": 3, "name": "Ada Lovelace"})
    assert client.flush(5)
    assert b"Ada Lovelace" not in _sent_bytes(transport)
    assert transport.records()[0]["features"] == {"age": 3}


def test_mask_callable_rewrites_or_drops_and_fails_closed(make_client):
    transport = InMemoryTransport()
    client = make_client(transport=transport)

    def redact(record):
        if record["features"].get("drop"):
            return None
        record["features"]["card"] = "****"
        return record

    def broken(record):
        raise RuntimeError("mask bug")

    f = client.monitor(model="m", mask=redact)(lambda card, drop=False: 0)
    g = client.monitor(model="m", mask=broken)(lambda card: 0)
    f("4111111111111111")
    f("4222222222222222", drop=True)
    g("4333333333333333")
    assert client.flush(5)
    raw = _sent_bytes(transport)
    assert b"4111" not in raw and b"4222" not in raw and b"4333" not in raw
    assert [r["features"]["card"] for r in transport.records()] == ["****"]
    assert client.stats().dropped == {"masked": 1, "mask_error": 1}


def test_record_size_cap_truncates_then_drops(make_client):
    transport = InMemoryTransport()
    client = make_client(transport=transport, max_record_bytes=1024)
    f = client.monitor(model="m")(lambda doc: 0)
    f("x" * 1000 + "y" * 1000)  # strings are capped at 1024 chars, then cut to 256 if too big
    g = client.monitor(model="m")(lambda **kw: 0)
    g(**{f"k{i}": "z" * 200 for i in range(40)})  # still too big after cutting: dropped
    assert client.flush(5)
    [record] = transport.records()
    assert record["features"]["doc"] == "x" * 256
    assert client.stats().dropped == {"too_large": 1}
