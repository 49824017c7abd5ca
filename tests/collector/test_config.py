"""Configuration: argument, then environment, then default; bad values handled as documented."""

from __future__ import annotations

import logging

import pytest

from keelwatch import environ
from keelwatch.collector import Client, ConfigError, InMemoryTransport, configure, flush, monitor
from keelwatch.collector._config import DEFAULT_ENDPOINT


def test_defaults():
    client = Client(transport=InMemoryTransport(), metrics_registry=False)
    assert client.config.endpoint == DEFAULT_ENDPOINT == "http://127.0.0.1:8787"
    assert client.config.batch_size == 4096 and client.config.sample_rate == 1.0
    assert client.config.spool_dir is None and client.disabled is False
    assert client.config.max_in_flight == 2 and client.config.wire_format == "auto"


def test_environment_is_read_and_arguments_win(monkeypatch, tmp_path):
    monkeypatch.setenv(environ.KEELWATCH_ENDPOINT, "http://collector:9000")
    monkeypatch.setenv(environ.KEELWATCH_API_KEY, "secret")
    monkeypatch.setenv(environ.KEELWATCH_BATCH_SIZE, "64")
    monkeypatch.setenv(environ.KEELWATCH_FLUSH_INTERVAL, "2.5")
    monkeypatch.setenv(environ.KEELWATCH_QUEUE_SIZE, "99")
    monkeypatch.setenv(environ.KEELWATCH_SAMPLE_RATE, "0.25")
    monkeypatch.setenv(environ.KEELWATCH_SEND_TIMEOUT, "3")
    monkeypatch.setenv(environ.KEELWATCH_SPOOL_DIR, str(tmp_path))
    monkeypatch.setenv(environ.KEELWATCH_DISABLED, "yes")
    monkeypatch.setenv(environ.KEELWATCH_MAX_IN_FLIGHT, "5")
    config = Client(batch_size=7, metrics_registry=False).config
    assert config.max_in_flight == 5
    assert Client(max_in_flight=1, metrics_registry=False).config.max_in_flight == 1
    assert config.endpoint == "http://collector:9000" and config.api_key == "secret"
    assert config.batch_size == 7 and config.flush_interval == 2.5
    assert config.max_queue_size == 99 and config.sample_rate == 0.25 and config.timeout == 3.0
    assert config.spool_dir == str(tmp_path) and config.disabled is True


@pytest.mark.parametrize(
    ("name", "raw", "field", "default"),
    [
        (environ.KEELWATCH_BATCH_SIZE, "lots", "batch_size", 4096),
        (environ.KEELWATCH_BATCH_SIZE, "0", "batch_size", 4096),
        (environ.KEELWATCH_FLUSH_INTERVAL, "-1", "flush_interval", 1.0),
        (environ.KEELWATCH_SAMPLE_RATE, "1.5", "sample_rate", 1.0),
        (environ.KEELWATCH_SAMPLE_RATE, "nan", "sample_rate", 1.0),
        (environ.KEELWATCH_DISABLED, "perhaps", "disabled", False),
        (environ.KEELWATCH_MAX_IN_FLIGHT, "0", "max_in_flight", 2),
        (environ.KEELWATCH_MAX_IN_FLIGHT, "many", "max_in_flight", 2),
        (environ.KEELWATCH_MAX_IN_FLIGHT, "99", "max_in_flight", 16),
    ],
)
def test_malformed_environment_logs_and_uses_default(monkeypatch, caplog, name, raw, field,
                                                     default):  # fmt: skip
    monkeypatch.setenv(name, raw)
    with caplog.at_level(logging.WARNING):
        config = Client(transport=InMemoryTransport(), metrics_registry=False).config
    assert getattr(config, field) == default
    assert name in caplog.text


@pytest.mark.parametrize(
    "kwargs",
    [
        {"endpoint": "not a url"},
        {"batch_size": 1.5},
        {"flush_interval": 0},
        {"max_queue_size": -1},
        {"sample_rate": 1.01},
        {"timeout": True},
        {"deny": "ssn"},
        {"mask": 3},
        {"max_in_flight": 0},
        {"wire_format": "xml"},
    ],
)
def test_bad_arguments_raise_config_error(kwargs):
    with pytest.raises(ConfigError) as info:
        Client(transport=InMemoryTransport(), metrics_registry=False, **kwargs)
    assert isinstance(info.value, ValueError)
    assert info.value.field == next(iter(kwargs))


def test_configure_replaces_the_default_client_and_keeps_it_on_error():
    first = InMemoryTransport()
    configure(transport=first, metrics_registry=False)
    with pytest.raises(ValueError):
        configure(batch_size=-5)
    monitor(model="m")(lambda: 1)()
    assert flush(5)
    assert len(first.records()) == 1
    second = InMemoryTransport()
    configure(transport=second, metrics_registry=False)
    monitor(model="m")(lambda: 1)()
    assert flush(5)
    assert len(first.records()) == 1 and len(second.records()) == 1


def test_bad_environment_never_breaks_the_decorated_call(monkeypatch, caplog):
    monkeypatch.setenv(environ.KEELWATCH_ENDPOINT, "collector:8787")  # no scheme
    monkeypatch.setenv(environ.KEELWATCH_DISABLED, "1")
    with caplog.at_level(logging.WARNING):
        assert monitor(model="m")(lambda x: x + 1)(1) == 2
    assert environ.KEELWATCH_ENDPOINT in caplog.text
