from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from keelwatch.alerts import WebhookSender, sign, verify


def test_signature_matches_the_standard_webhooks_example():
    # The example published with the Standard Webhooks specification.
    signature = sign(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
        b'{"test": 2432232314}',
    )
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_verify_rejects_tampering_and_stale_timestamps():
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"a": 1}'
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": "1000",
        "webhook-signature": sign(secret, "msg_1", 1000, body),
    }
    assert verify(secret, headers, body, now=1000)
    assert not verify(secret, headers, b'{"a": 2}', now=1000)
    assert not verify("whsec_b3RoZXI=", headers, body, now=1000)
    assert not verify(secret, headers, body, now=1000 + 301)
    assert not verify(secret, {**headers, "webhook-timestamp": "x"}, body, now=1000)


class _Endpoint:
    """A local receiver answering a scripted sequence of statuses."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.bodies: list[tuple[dict[str, str], bytes]] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                headers = {k.lower(): v for k, v in self.headers.items()}
                endpoint.bodies.append((headers, body))
                status = endpoint.statuses.pop(0) if endpoint.statuses else 200
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint_factory():
    made: list[_Endpoint] = []

    def make(statuses: list[int]) -> _Endpoint:
        made.append(_Endpoint(statuses))
        return made[-1]

    yield make
    for endpoint in made:
        endpoint.close()


def test_delivery_retries_5xx_and_429_with_backoff_then_succeeds(endpoint_factory):
    endpoint = endpoint_factory([503, 429, 200])
    sleeps: list[float] = []
    sender = WebhookSender("s3cret", attempts=4, backoff_s=0.5, sleep=sleeps.append)
    delivery = sender.send(endpoint.url, "model.retrain", {"model": "m"})
    assert delivery.delivered and delivery.status == 200 and delivery.attempts == 3
    assert sleeps == [0.5, 1.0]
    ids = {headers["webhook-id"] for headers, _ in endpoint.bodies}
    assert len(ids) == 1  # the same id on every retry: the receiver's idempotency key
    headers, body = endpoint.bodies[-1]
    assert verify("s3cret", headers, body)
    assert json.loads(body)["type"] == "model.retrain"


def test_delivery_does_not_retry_other_4xx(endpoint_factory):
    endpoint = endpoint_factory([400])
    sender = WebhookSender("s3cret", attempts=4, sleep=lambda s: None)
    delivery = sender.send(endpoint.url, "model.retrain", {})
    assert not delivery.delivered and delivery.status == 400 and delivery.attempts == 1


def test_unreachable_endpoint_fails_without_raising():
    sender = WebhookSender("s3cret", attempts=2, sleep=lambda s: None, timeout_s=1)
    delivery = sender.send("http://127.0.0.1:9/unreachable", "model.retrain", {})
    assert not delivery.delivered and delivery.status == 0 and delivery.error
