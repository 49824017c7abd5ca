"""``@monitor``: records each call of a sync, async, generator or async-generator function.

Per call, on the caller's thread: an id, two clock reads, a context variable, and an append to the
client's queue with references to the arguments and the result. The function's return value and
exceptions pass through unchanged (an exception is recorded as ``"TypeName: message"``).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from ._config import ConfigError, MaskFunc, check_sample_rate, names
from ._context import CURRENT
from ._ids import ids
from ._spec import TASKS, MonitorSpec

if TYPE_CHECKING:
    from ._client import Client

F = TypeVar("F", bound=Callable[..., Any])

_time = time.time
_perf = time.perf_counter
_next_seq = ids.next_seq


def monitor(
    model: str,
    *,
    version: str = "",
    slot: str = "",
    features: Iterable[str] | None = None,
    feature_names: Sequence[str] | None = None,
    output: Callable[[Any], Any] | None = None,
    tags: Mapping[str, str] | None = None,
    sample_rate: float | None = None,
    allow: Iterable[str] | None = None,
    deny: Iterable[str] | None = None,
    mask: MaskFunc | None = None,
    task: str = "auto",
    classes: Sequence[Any] | None = None,
    client: Client | None = None,
) -> Callable[[F], F]:
    """Record every call of the decorated function as a prediction of ``model``.

    Args:
        model: model name (1..128 chars). version, slot: its version and deployment slot.
        features: names of the parameters that are features (``None``: all but ``self``/``cls``).
            A dict, pandas Series or 1-D array parameter spreads into one feature per key; a
            DataFrame, 2-D array or list of dicts makes a batch (one record per row, ids
            ``f"{id}-{i}"``), whose output must have one entry per row.
        feature_names: column names of NumPy array inputs (default ``<param>_<i>``).
        output: called (on the sender thread) with the return value, or with the list of
            yielded items for generators; returns what to record (see ``_outputs``).
        tags: string labels added to every record. sample_rate: overrides the client's.
        allow, deny, mask: masking for this function, on top of the client's.
        task: ``auto``, ``classification``, ``regression`` or ``llm`` (how outputs map).
        classes: class labels in ``predict_proba`` column order.
        client: the ``Client`` to use (default: the one set by ``configure``).
    """
    if not isinstance(model, str) or not 0 < len(model) <= 128:
        raise ConfigError("model", model, "must be a string of 1..128 characters")
    if task not in TASKS:
        raise ConfigError("task", task, f"must be one of {TASKS}")
    if output is not None and not callable(output):
        raise ConfigError("output", output, "must be callable")
    if mask is not None and not callable(mask):
        raise ConfigError("mask", mask, "must be callable")
    template = MonitorSpec(
        fn=monitor,
        model=model,
        version=str(version),
        slot=str(slot),
        features=names("features", features),
        feature_names=None if feature_names is None else tuple(feature_names),
        output=output,
        tags={str(k): str(v) for k, v in (tags or {}).items()},
        sample_rate=None if sample_rate is None else check_sample_rate(sample_rate),
        allow=names("allow", allow),
        deny=names("deny", deny) or frozenset(),
        mask=mask,
        task=task,
        classes=None if classes is None else list(classes),
    )

    def decorate(fn: F) -> F:
        if isinstance(fn, (classmethod, staticmethod)):
            return type(fn)(decorate(fn.__func__))
        if not callable(fn):
            raise ConfigError("fn", fn, "@monitor needs a function")
        spec = dataclasses.replace(template, fn=fn)
        return _wrap(fn, spec, client)

    return decorate


def _wrap(fn: F, spec: MonitorSpec, bound: Client | None) -> F:
    from ._global import default_client

    if inspect.isasyncgenfunction(fn):
        wrapper: Callable[..., Any] = _async_gen_wrapper(fn, spec, bound, default_client)
    elif inspect.iscoroutinefunction(fn):
        wrapper = _async_wrapper(fn, spec, bound, default_client)
    elif inspect.isgeneratorfunction(fn):
        wrapper = _gen_wrapper(fn, spec, bound, default_client)
    else:
        wrapper = _sync_wrapper(fn, spec, bound, default_client)
    return functools.wraps(fn)(wrapper)  # type: ignore[return-value]


def _sync_wrapper(fn: Any, spec: MonitorSpec, bound: Any, default: Any) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        client = bound if bound is not None else default()
        if client.disabled:
            return fn(*args, **kwargs)
        seq = _next_seq()
        token = CURRENT.set(seq)
        ts = _time()
        t0 = _perf()
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            client._record(spec, seq, ts, _perf() - t0, args, kwargs, None, exc)
            raise
        finally:
            CURRENT.reset(token)
        client._record(spec, seq, ts, _perf() - t0, args, kwargs, result, None)
        return result

    return wrapper


def _async_wrapper(fn: Any, spec: MonitorSpec, bound: Any, default: Any) -> Callable[..., Any]:
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        client = bound if bound is not None else default()
        if client.disabled:
            return await fn(*args, **kwargs)
        seq = _next_seq()
        token = CURRENT.set(seq)
        ts = _time()
        t0 = _perf()
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            client._record(spec, seq, ts, _perf() - t0, args, kwargs, None, exc)
            raise
        finally:
            CURRENT.reset(token)
        client._record(spec, seq, ts, _perf() - t0, args, kwargs, result, None)
        return result

    return wrapper


def _gen_wrapper(fn: Any, spec: MonitorSpec, bound: Any, default: Any) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        client = bound if bound is not None else default()
        if client.disabled:
            return (yield from fn(*args, **kwargs))
        seq = _next_seq()
        ts = _time()
        t0 = _perf()
        items: list[Any] = []
        gen = fn(*args, **kwargs)
        sent: Any = None
        thrown: BaseException | None = None
        try:
            while True:
                # Set the id around each step only: between steps the caller's context is its own.
                token = CURRENT.set(seq)
                try:
                    if thrown is not None:
                        exc, thrown = thrown, None
                        item = gen.throw(exc)
                    else:
                        item = gen.send(sent)
                finally:
                    CURRENT.reset(token)
                items.append(item)
                try:
                    sent = yield item
                except GeneratorExit:
                    raise
                except BaseException as exc:
                    thrown = exc
        except StopIteration as stop:
            client._record(spec, seq, ts, _perf() - t0, args, kwargs, items, None, True)
            return stop.value
        except GeneratorExit:
            client._record(spec, seq, ts, _perf() - t0, args, kwargs, items, None, True)
            gen.close()
            raise
        except BaseException as exc:
            client._record(spec, seq, ts, _perf() - t0, args, kwargs, None, exc, True)
            raise

    return wrapper


def _async_gen_wrapper(fn: Any, spec: MonitorSpec, bound: Any, default: Any) -> Callable[..., Any]:
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        client = bound if bound is not None else default()
        if client.disabled:
            async for item in fn(*args, **kwargs):
                yield item
            return
        seq = _next_seq()
        ts = _time()
        t0 = _perf()
        items: list[Any] = []
        agen = fn(*args, **kwargs)
        sent: Any = None
        thrown: BaseException | None = None
        try:
            while True:
                token = CURRENT.set(seq)
                try:
                    if thrown is not None:
                        exc, thrown = thrown, None
                        item = await agen.athrow(exc)
                    else:
                        item = await agen.asend(sent)
                finally:
                    CURRENT.reset(token)
                items.append(item)
                try:
                    sent = yield item
                except GeneratorExit:
                    raise
                except BaseException as exc:
                    thrown = exc
        except StopAsyncIteration:
            client._record(spec, seq, ts, _perf() - t0, args, kwargs, items, None, True)
        except GeneratorExit:
            client._record(spec, seq, ts, _perf() - t0, args, kwargs, items, None, True)
            await agen.aclose()
            raise
        except BaseException as exc:
            client._record(spec, seq, ts, _perf() - t0, args, kwargs, None, exc, True)
            raise

    return wrapper
