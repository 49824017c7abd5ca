"""OTLP/HTTP traces (``POST /v1/traces``): protobuf or JSON ``ExportTraceServiceRequest`` to rows.

JSON follows the OTLP spec's mapping: lowerCamelCase keys, ids as hex (not base64), enums as
integers, 64-bit integers as strings or numbers. A span with a malformed id or times is
dropped and counted in ``partial_success.rejected_spans``, as the spec asks; a body that cannot
be decoded at all is a 400.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
import pyarrow as pa
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from ._arrow_ingest import UnreadableBody

__all__ = ["PROTOBUF", "SPAN_SCHEMA", "SpanBatch", "encode_response", "parse_otlp"]

PROTOBUF = "application/x-protobuf"
_STR_MAP = pa.map_(pa.string(), pa.string())
_NS = pa.timestamp("ns", tz="UTC")
SPAN_SCHEMA = pa.schema(
    [
        ("project", pa.string()),
        ("service", pa.string()),
        ("trace_id", pa.string()),
        ("span_id", pa.string()),
        ("parent_span_id", pa.string()),
        ("name", pa.string()),
        ("kind", pa.string()),
        ("start_time", _NS),
        ("end_time", _NS),
        ("duration_ms", pa.float64()),
        ("status_code", pa.string()),
        ("status_message", pa.string()),
        ("scope", pa.string()),
        ("attributes", _STR_MAP),
        ("resource", _STR_MAP),
        ("events", pa.string()),
    ]
)
_KINDS = {v: k.removeprefix("SPAN_KIND_").lower() for k, v in Span.SpanKind.items()}
_STATUS = {v: k.removeprefix("STATUS_CODE_").lower() for k, v in Status.StatusCode.items()}
_ID_FIELDS = ("traceId", "spanId", "parentSpanId")
_MAX_TEXT = 65536


@dataclass(frozen=True)
class SpanBatch:
    """Accepted spans as rows of ``spans``, and how many were dropped and why."""

    table: pa.Table
    rejected: int
    error: str


def _value(value: AnyValue) -> str:
    which = value.WhichOneof("value")
    if which is None:
        return ""
    if which == "bool_value":
        return "true" if value.bool_value else "false"
    if which == "array_value":
        return orjson.dumps([_value(v) for v in value.array_value.values]).decode()
    if which == "kvlist_value":
        return orjson.dumps(_attributes(value.kvlist_value.values)).decode()
    if which == "bytes_value":
        return value.bytes_value.hex()
    return str(getattr(value, which))[:_MAX_TEXT]


def _attributes(items: Iterable[KeyValue]) -> dict[str, str]:
    return {item.key: _value(item.value) for item in items}


def _hex_to_b64(node: dict[str, Any]) -> None:
    for name in _ID_FIELDS:
        raw = node.get(name)
        if isinstance(raw, str) and raw:
            try:
                node[name] = base64.b64encode(bytes.fromhex(raw)).decode()
            except ValueError as exc:
                raise UnreadableBody(f"{name}: not hex: {raw[:40]!r}") from exc


def _from_json(body: bytes) -> ExportTraceServiceRequest:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise UnreadableBody(f"body is not valid JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise UnreadableBody("body must be an ExportTraceServiceRequest object")
    for resource_spans in _list(payload, "resourceSpans"):
        for scope_spans in _list(resource_spans, "scopeSpans"):
            for span in _list(scope_spans, "spans"):
                _hex_to_b64(span)
                for link in _list(span, "links"):
                    _hex_to_b64(link)
    try:
        return json_format.ParseDict(
            payload, ExportTraceServiceRequest(), ignore_unknown_fields=True
        )
    except json_format.ParseError as exc:
        raise UnreadableBody(f"not an OTLP trace request: {exc}") from exc


def _list(node: Any, key: str) -> list[Any]:
    found = node.get(key) if isinstance(node, dict) else None
    return [item for item in found if isinstance(item, dict)] if isinstance(found, list) else []


def decode(body: bytes, content_type: str) -> ExportTraceServiceRequest:
    """The request message from a protobuf or JSON body."""
    if content_type == "application/json":
        return _from_json(body)
    try:
        return ExportTraceServiceRequest.FromString(body)
    except DecodeError as exc:
        raise UnreadableBody(f"body is not an OTLP protobuf message: {exc}") from exc


def parse_otlp(body: bytes, content_type: str, project: str) -> SpanBatch:
    """Spans of an OTLP/HTTP trace export as ``spans`` rows for ``project``."""
    request = decode(body, content_type)
    rows: list[dict[str, Any]] = []
    rejected, error = 0, ""
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        service = resource.get("service.name", "")
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope.name
            for span in scope_spans.spans:
                problem = _problem(span)
                if problem:
                    rejected += 1
                    error = error or problem
                    continue
                rows.append(_row(span, project, service, scope, resource))
    return SpanBatch(pa.Table.from_pylist(rows, schema=SPAN_SCHEMA), rejected, error)


def _problem(span: Span) -> str:
    if len(span.trace_id) != 16 or not any(span.trace_id):
        return "a span needs a 16-byte, non-zero trace_id"
    if len(span.span_id) != 8 or not any(span.span_id):
        return "a span needs an 8-byte, non-zero span_id"
    if span.parent_span_id and len(span.parent_span_id) != 8:
        return "parent_span_id must be 8 bytes"
    if not span.start_time_unix_nano or span.end_time_unix_nano < span.start_time_unix_nano:
        return "a span needs start_time_unix_nano <= end_time_unix_nano"
    return ""


def _row(
    span: Span, project: str, service: str, scope: str, resource: dict[str, str]
) -> dict[str, Any]:
    events = [
        {
            "name": e.name,
            "time_unix_nano": e.time_unix_nano,
            "attributes": _attributes(e.attributes),
        }
        for e in span.events
    ]
    return {
        "project": project,
        "service": service,
        "trace_id": binascii.hexlify(span.trace_id).decode(),
        "span_id": binascii.hexlify(span.span_id).decode(),
        "parent_span_id": binascii.hexlify(span.parent_span_id).decode(),
        "name": span.name[:_MAX_TEXT],
        "kind": _KINDS.get(span.kind, "unspecified"),
        "start_time": span.start_time_unix_nano,
        "end_time": span.end_time_unix_nano,
        "duration_ms": (span.end_time_unix_nano - span.start_time_unix_nano) / 1e6,
        "status_code": _STATUS.get(span.status.code, "unset"),
        "status_message": span.status.message[:_MAX_TEXT],
        "scope": scope,
        "attributes": _attributes(span.attributes),
        "resource": resource,
        "events": orjson.dumps(events).decode() if events else "",
    }


def encode_response(batch: SpanBatch, content_type: str) -> bytes:
    """The ``ExportTraceServiceResponse`` in the request's encoding."""
    response = ExportTraceServiceResponse()
    if batch.rejected:
        response.partial_success.rejected_spans = batch.rejected
        response.partial_success.error_message = batch.error
    if content_type == "application/json":
        return orjson.dumps(json_format.MessageToDict(response))
    return response.SerializeToString()
