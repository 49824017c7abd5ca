"""Features of a call: arguments bound to parameter names, then expanded.

Runs on the sender thread. A dict, a pandas Series or a 1-D array argument spreads into one
feature per key/column; a DataFrame, a 2-D array or a list of dicts makes the call a *batch* of
rows (other arguments are repeated on every row).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from . import _values

_SELF_NAMES = ("self", "cls")


class Inputs(NamedTuple):
    """Features shared by every row, the batch rows (``None`` for a single prediction) and how
    many rows the batch had before it was cut to ``max_rows``."""

    common: dict[str, Any]
    rows: list[dict[str, Any]] | None
    total: int = 1


@functools.lru_cache(maxsize=4096)
def _signature(fn: Callable[..., Any]) -> inspect.Signature | None:
    try:
        return inspect.signature(fn)
    except (TypeError, ValueError):
        return None


class _Plan(NamedTuple):
    """How to bind calls of a plain function (no ``*args``/``**kwargs``/positional-only)."""

    names: tuple[str, ...]
    defaults: dict[str, Any]
    skip_first: bool


@functools.lru_cache(maxsize=4096)
def _plan(fn: Callable[..., Any]) -> _Plan | None:
    sig = _signature(fn)
    if sig is None:
        return None
    params = list(sig.parameters.values())
    plain = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    if not all(p.kind in plain for p in params):
        return None
    defaults = {p.name: p.default for p in params if p.default is not p.empty}
    skip = bool(params) and params[0].name in _SELF_NAMES
    return _Plan(tuple(p.name for p in params), defaults, skip)


def _bind_plain(
    plan: _Plan, args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> list[tuple[str, Any]] | None:
    names = plan.names
    if not kwargs and len(args) == len(names):  # every parameter given by position
        pairs = list(zip(names, args, strict=True))
        return pairs[1:] if plan.skip_first else pairs
    if len(args) > len(names) or any(k not in names for k in kwargs):
        return None
    values = dict(zip(names, args, strict=False))  # args may be fewer than names
    values.update(kwargs)
    for name in names[len(args) :]:
        if name not in values:
            if name not in plan.defaults:
                return None
            values[name] = plan.defaults[name]
    pairs = [(n, values[n]) for n in names]
    return pairs[1:] if plan.skip_first else pairs


def single_arity(fn: Callable[..., Any], selected: frozenset[str] | None) -> int:
    """How many positional arguments a call of ``fn`` has when its one feature parameter (after
    ``self``/``cls``) is all there is, or 0: such a call's dict argument is its features."""
    plan = _plan(fn)
    if plan is None or len(plan.names) != 1 + plan.skip_first:
        return 0
    if selected is not None and plan.names[-1] not in selected:
        return 0
    return len(plan.names)


def bind(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> list[tuple[str, Any]]:
    """``(parameter name, value)`` pairs of a call; ``self``/``cls`` and ``*args`` spread out."""
    plan = _plan(fn)
    if plan is not None:
        fast = _bind_plain(plan, args, kwargs)
        if fast is not None:
            return fast
    sig = _signature(fn)
    if sig is None:
        return [(f"arg{i}", a) for i, a in enumerate(args)] + list(kwargs.items())
    try:
        bound = sig.bind_partial(*args, **kwargs)
    except TypeError:
        return [(f"arg{i}", a) for i, a in enumerate(args)] + list(kwargs.items())
    bound.apply_defaults()
    params = sig.parameters
    pairs: list[tuple[str, Any]] = []
    for i, (name, value) in enumerate(bound.arguments.items()):
        kind = params[name].kind
        if i == 0 and name in _SELF_NAMES:
            continue
        if kind is inspect.Parameter.VAR_POSITIONAL:
            pairs.extend((f"{name}{j}", v) for j, v in enumerate(value))
        elif kind is inspect.Parameter.VAR_KEYWORD:
            pairs.extend(value.items())
        else:
            pairs.append((name, value))
    return pairs


def extract(
    pairs: list[tuple[str, Any]],
    selected: frozenset[str] | None,
    feature_names: Sequence[str] | None,
    max_rows: int = 1 << 62,
) -> Inputs:
    """The features in ``pairs`` (only parameters named in ``selected``, when given)."""
    common: dict[str, Any] = {}
    rows: list[dict[str, Any]] | None = None
    total = 1
    for name, value in pairs:
        if selected is not None and name not in selected:
            continue
        kind = _values.kind(value)
        if kind == "mapping":
            common.update(value)  # keys become strings when the record is finished
        elif kind == "series":
            common.update(value.items())
        elif kind == "vector":
            common.update(zip(_names(name, feature_names, len(value)), value.tolist(), strict=True))
        elif rows is None and kind == "dataframe":
            total = len(value)
            head = value.iloc[:max_rows].to_dict("records")
            rows = [{str(k): v for k, v in r.items()} for r in head]
        elif rows is None and kind == "matrix":
            total = len(value)
            cols = _names(name, feature_names, value.shape[1])
            rows = [dict(zip(cols, r, strict=True)) for r in value[:max_rows].tolist()]
        elif rows is None and kind == "rows":
            total = len(value)
            rows = [{str(k): v for k, v in r.items()} for r in value[:max_rows]]
        else:
            common[name] = value
    return Inputs(common, rows, total)


def _names(param: str, given: Sequence[str] | None, n: int) -> list[str]:
    if given is not None and len(given) == n:
        return [str(g) for g in given]
    return [f"{param}_{i}" for i in range(n)]
