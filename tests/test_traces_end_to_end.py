"""A stock OpenTelemetry OTLP/HTTP exporter sends spans to keelwatch; predictions join them."""

from __future__ import annotations

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from keelwatch.collector import Client, monitor
from keelwatch.collector.server import ServerConfig, create_app


def test_otlp_exporter_spans_join_predictions(store, live_server, tmp_path):
    config = ServerConfig(data_dir=str(tmp_path), detect_interval_s=0)
    with live_server(create_app(config, store=store)) as server:
        provider = TracerProvider(resource=Resource.create({"service.name": "scoring-api"}))
        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=server.url + "/v1/traces"))
        )
        tracer = provider.get_tracer("test")
        sdk = Client(server.url, flush_interval=0.05)
        predict = monitor(model="churn", client=sdk)(lambda features: 0.25)
        for i in range(5):
            with tracer.start_as_current_span("POST /predict"):
                predict({"x": float(i)})
        assert sdk.flush(10.0)
        sdk.shutdown()
        assert provider.force_flush(10_000)
        provider.shutdown()

        joined = store.query(
            "SELECT p.prediction_id AS pid, s.name AS name, s.service AS service "
            "FROM predictions AS p INNER JOIN spans AS s ON p.trace_id = s.trace_id "
            "WHERE p.model = 'churn'"
        ).to_pylist()
    assert len(joined) == 5
    assert {(r["name"], r["service"]) for r in joined} == {("POST /predict", "scoring-api")}
