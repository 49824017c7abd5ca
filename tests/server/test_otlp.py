"""OTLP/HTTP traces: the OpenTelemetry SDK's own exporter, protobuf and JSON, partial success."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from keelwatch.collector.server._otlp import PROTOBUF
from keelwatch.store import EmbeddedStore


def spans(store: EmbeddedStore) -> list[dict[str, Any]]:
    return store.query(
        "SELECT service, trace_id, span_id, parent_span_id, name, kind, status_code, "
        "attributes, duration_ms FROM spans ORDER BY start_time"
    ).to_pylist()


def to_otlp(finished: Any) -> bytes:
    """SDK spans as an OTLP protobuf request (what the OTLP/HTTP exporter sends)."""
    request = ExportTraceServiceRequest()
    for span in finished:
        resource_spans = request.resource_spans.add()
        for key, value in span.resource.attributes.items():
            resource_spans.resource.attributes.add(key=key).value.string_value = str(value)
        scope_spans = resource_spans.scope_spans.add()
        scope_spans.scope.name = span.instrumentation_scope.name
        out = scope_spans.spans.add(
            trace_id=span.context.trace_id.to_bytes(16, "big"),
            span_id=span.context.span_id.to_bytes(8, "big"),
            parent_span_id=span.parent.span_id.to_bytes(8, "big") if span.parent else b"",
            name=span.name,
            kind=span.kind.value + 1,
            start_time_unix_nano=span.start_time,
            end_time_unix_nano=span.end_time,
        )
        for key, value in span.attributes.items():
            item = out.attributes.add(key=key).value
            if isinstance(value, int):
                item.int_value = value
            else:
                item.string_value = value
        out.status.code = span.status.status_code.value
        out.status.message = span.status.description or ""
    return request.SerializeToString()


def test_sdk_spans_as_protobuf(served: Callable[..., Any], store: EmbeddedStore) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "churn-api"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    with (
        tracer.start_as_current_span("predict", attributes={"model": "churn", "n": 3}) as parent,
        tracer.start_as_current_span("features") as child,
    ):
        child.set_status(Status(StatusCode.ERROR, "boom"))
    provider.shutdown()
    body = to_otlp(sorted(exporter.get_finished_spans(), key=lambda s: s.start_time))
    with served() as srv, httpx.Client(base_url=srv.url) as http:
        answer = http.post("/v1/traces", content=body, headers={"content-type": PROTOBUF})
    assert answer.status_code == 200
    assert answer.headers["content-type"] == PROTOBUF
    assert not ExportTraceServiceResponse.FromString(answer.content).HasField("partial_success")
    stored = spans(store)
    assert [s["name"] for s in stored] == ["predict", "features"]
    trace = format(parent.get_span_context().trace_id, "032x")
    assert {s["trace_id"] for s in stored} == {trace}
    assert stored[1]["parent_span_id"] == stored[0]["span_id"]
    assert stored[0]["service"] == "churn-api"
    assert dict(stored[0]["attributes"]) == {"model": "churn", "n": "3"}
    assert stored[1]["status_code"] == "error"
    assert stored[0]["kind"] == "internal"


def otlp_json(
    trace_id: str = "5b8efff798038103d269b633813fc60c", span_id: str = "eee19b7ec3c1b174"
) -> dict[str, Any]:
    now = time.time_ns()
    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]
                },
                "scopeSpans": [
                    {
                        "scope": {"name": "lib"},
                        "spans": [
                            {
                                "traceId": trace_id,
                                "spanId": span_id,
                                "name": "call",
                                "kind": 2,
                                "startTimeUnixNano": str(now),
                                "endTimeUnixNano": str(now + 2_500_000),
                                "attributes": [{"key": "ok", "value": {"boolValue": True}}],
                            },
                            {
                                "traceId": "",
                                "spanId": span_id,
                                "name": "no trace",
                                "startTimeUnixNano": str(now),
                                "endTimeUnixNano": str(now),
                            },
                        ],
                    }
                ],
            }
        ]
    }


def test_json_with_partial_success(client: Any, store: EmbeddedStore) -> None:
    headers = {"content-type": "application/json"}
    body = orjson.dumps(otlp_json())
    answer = client.post("/v1/traces", content=body, headers=headers)
    assert answer.status_code == 200
    assert answer.json()["partialSuccess"]["rejectedSpans"] == "1"
    stored = spans(store)
    assert len(stored) == 1
    assert stored[0]["trace_id"] == "5b8efff798038103d269b633813fc60c"
    assert stored[0]["kind"] == "server"
    assert stored[0]["duration_ms"] == pytest.approx(2.5)
    assert dict(stored[0]["attributes"]) == {"ok": "true"}
    again = client.post("/v1/traces", content=body, headers=headers)
    assert again.status_code == 200
    assert len(spans(store)) == 1


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"\x0a\xff\xff", "application/x-protobuf", 400),
        (b"{", "application/json", 400),
        (orjson.dumps(otlp_json(trace_id="zz")), "application/json", 400),
        (b"[]", "application/json", 400),
        (b"{}", "text/plain", 415),
    ],
)
def test_bad_bodies(client: Any, body: bytes, content_type: str, status: int) -> None:
    answer = client.post("/v1/traces", content=body, headers={"content-type": content_type})
    assert answer.status_code == status
