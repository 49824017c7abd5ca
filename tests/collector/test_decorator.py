"""@monitor on every kind of callable: results, exceptions, ids and context pass through."""

from __future__ import annotations

import asyncio

import pytest

from keelwatch.collector import InMemoryTransport, current_prediction_id


@pytest.fixture
def client_and_transport(make_client):
    transport = InMemoryTransport()
    return make_client(transport=transport), transport


def test_async_function_records_and_exposes_its_id(client_and_transport):
    client, transport = client_and_transport
    seen = []

    @client.monitor(model="m")
    async def predict(x):
        await asyncio.sleep(0)
        seen.append(current_prediction_id())
        return x * 2

    async def main():
        return await asyncio.gather(*(predict(i) for i in range(5)))

    assert asyncio.run(main()) == [0, 2, 4, 6, 8]
    assert current_prediction_id() is None
    assert client.flush(5)
    records = transport.records()
    assert {r["prediction_id"] for r in records} == set(seen)
    assert len(set(seen)) == 5
    assert predict.__name__ == "predict"


def test_generator_streams_text_and_return_value(client_and_transport):
    client, transport = client_and_transport
    ids = []

    @client.monitor(model="llm", output=None)
    def stream(prompt):
        for word in ("hello", " ", "world"):
            ids.append(current_prediction_id())
            yield word
        return "done"

    def consume():
        return (yield from stream("hi"))

    gen = consume()
    assert next(gen) == "hello"
    assert current_prediction_id() is None  # only set while the generator runs
    assert list(gen) == [" ", "world"]
    assert client.flush(5)
    [record] = transport.records()
    assert record["output"]["text"] == "hello world"
    assert record["features"] == {"prompt": "hi"}
    assert set(ids) == {record["prediction_id"]}


def test_generator_error_and_early_close_are_recorded(client_and_transport):
    client, transport = client_and_transport

    @client.monitor(model="m")
    def numbers(fail):
        yield 1
        if fail:
            raise KeyError("k")
        yield 2

    with pytest.raises(KeyError):
        list(numbers(True))
    gen = numbers(False)
    next(gen)
    gen.close()
    assert client.flush(5)
    failed, closed = transport.records()
    assert failed["error"] == "KeyError: 'k'"
    assert closed["error"] is None and closed["output"]["label"] == "1"


def test_async_generator(client_and_transport):
    client, transport = client_and_transport

    @client.monitor(model="llm", task="llm")
    async def stream(n):
        for i in range(n):
            assert current_prediction_id() is not None
            yield f"t{i}"

    async def main():
        return [t async for t in stream(3)]

    assert asyncio.run(main()) == ["t0", "t1", "t2"]
    assert client.flush(5)
    assert transport.records()[0]["output"]["text"] == "t0t1t2"


def test_methods_classmethods_staticmethods(client_and_transport):
    client, transport = client_and_transport

    class Model:
        factor = 3

        @client.monitor(model="m")
        def predict(self, x):
            return x * self.factor

        @client.monitor(model="m")
        @classmethod
        def cls_predict(cls, x):
            return x * cls.factor

        @client.monitor(model="m")
        @staticmethod
        def static_predict(x):
            return x

    assert Model().predict(2) == 6
    assert Model.cls_predict(2) == 6
    assert Model.static_predict(2) == 2
    assert client.flush(5)
    assert [r["features"] for r in transport.records()] == [{"x": 2}] * 3


def test_async_methods_and_async_generator_methods(client_and_transport):
    client, transport = client_and_transport

    class Bot:
        @client.monitor(model="bot", task="llm")
        async def answer(self, question):
            return "yes"

        @client.monitor(model="bot")
        async def stream(self, question):
            yield "a"
            yield "b"

    async def main():
        bot = Bot()
        return await bot.answer("q?"), [t async for t in bot.stream("q2")]

    assert asyncio.run(main()) == ("yes", ["a", "b"])
    assert client.flush(5)
    records = transport.records()
    assert [r["output"]["text"] for r in records] == ["yes", "ab"]
    assert [r["features"] for r in records] == [{"question": "q?"}, {"question": "q2"}]


def test_reentrant_calls_get_their_own_ids(client_and_transport):
    client, transport = client_and_transport
    seen = {}

    @client.monitor(model="inner")
    def inner(x):
        seen["inner"] = current_prediction_id()
        return x

    @client.monitor(model="outer")
    def outer(x):
        seen["outer_before"] = current_prediction_id()
        inner(x)
        seen["outer_after"] = current_prediction_id()
        return x

    outer(1)
    assert seen["outer_before"] == seen["outer_after"] != seen["inner"]
    assert client.flush(5)
    by_model = {r["model"]: r["prediction_id"] for r in transport.records()}
    assert by_model == {"inner": seen["inner"], "outer": seen["outer_before"]}


def test_disabled_client_only_calls_the_function(make_client):
    transport = InMemoryTransport()
    client = make_client(transport=transport, disabled=True)
    f = client.monitor(model="m")(lambda x: x + 1)
    assert f(1) == 2
    assert client.flush(1)
    assert transport.requests == []


def test_ids_are_unique_and_sampling_is_by_id(make_client):
    transport = InMemoryTransport()
    client = make_client(transport=transport, sample_rate=0.5, batch_size=100)
    f = client.monitor(model="m")(lambda x: x)
    for i in range(1000):
        f(i)
    assert client.flush(5)
    kept = transport.records()
    assert 380 < len(kept) < 620
    assert len({r["prediction_id"] for r in kept}) == len(kept)
    assert client.stats().dropped["sampled"] + len(kept) == 1000
    assert len(transport.requests) >= 4  # batched by batch_size


def test_outcomes_go_to_their_own_endpoint(make_client):
    transport = InMemoryTransport()
    client = make_client(transport=transport, default_model="churn")
    client.log_outcome("abc", label=1, value=12.5, ts=5.0)
    client.log_outcome("", label=1)  # invalid id: counted, not raised
    assert client.flush(5)
    [record] = transport.records("/v1/outcomes")
    assert record == {"prediction_id": "abc", "model": "churn", "ts": 5.0, "label": "1",
                      "value": 12.5}  # fmt: skip
    assert client.stats().dropped == {"invalid": 1}
