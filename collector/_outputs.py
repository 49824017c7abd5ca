"""Mapping a model's return value onto the wire ``output`` object.

==========================================  ===================================================
returned value                              ``output``
==========================================  ===================================================
``None``                                    ``null``
``bool`` / ``int`` / ``str`` in a batch     ``label`` (as a string)
``float``                                   ``value`` (``label`` under ``task="classification"``)
``str`` from a single call                  ``text`` (``label`` under ``task="classification"``)
a row of probabilities (``predict_proba``)  ``proba``; ``label`` = class of the largest one
                                            (``classes`` option, else its index); ``value`` =
                                            ``proba[1]`` when there are two classes
a dict with keys ``label``, ``value``,      those keys (LLMs: return, or map with ``output=``,
``proba``, ``text``, ``prompt_tokens``,     ``{"text": ..., "prompt_tokens": ..., "completion_
``completion_tokens``                       tokens": ...}``)
==========================================  ===================================================

A generator's yielded items are collected: all strings are joined into ``text``, otherwise the
last item is mapped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from . import _values

KEYS = ("label", "value", "proba", "text", "prompt_tokens", "completion_tokens")


def streamed(items: list[Any]) -> Any:
    """The value a generator's yielded ``items`` stand for."""
    if items and all(isinstance(i, str) for i in items):
        return "".join(items)
    return items[-1] if items else None


def to_wire(
    value: Any, task: str = "auto", classes: Sequence[Any] | None = None, in_batch: bool = False
) -> dict[str, Any] | None:
    """The wire ``output`` object for one prediction's ``value`` (``None`` when there is none)."""
    value = _values.plain(value)
    if value is None:
        return None
    out: dict[str, Any] = dict.fromkeys(KEYS)
    if isinstance(value, Mapping):
        out["label"] = _values.text(value.get("label"))
        out["value"] = _values.number(value.get("value"))
        proba = value.get("proba")
        if proba is not None:
            out["proba"] = _proba(proba)
        out["text"] = _values.text(value.get("text"), limit=1 << 30)
        out["prompt_tokens"] = _values.count(value.get("prompt_tokens"))
        out["completion_tokens"] = _values.count(value.get("completion_tokens"))
    elif isinstance(value, bool):
        out["label"] = "true" if value else "false"
    elif isinstance(value, int):
        if task == "regression":
            out["value"] = float(value)
        else:
            out["label"] = str(value)
    elif isinstance(value, float):
        if task == "classification":
            out["label"] = _values.text(value)
        else:
            out["value"] = _values.number(value)
    elif isinstance(value, str):
        if task == "llm" or (task == "auto" and not in_batch):
            out["text"] = value
        else:
            out["label"] = value
    elif isinstance(value, (list, tuple)) and value and all(_is_num(v) for v in value):
        if task == "regression" and len(value) == 1:
            out["value"] = _values.number(value[0])
        else:
            proba = _proba(value)
            out["proba"] = proba
            scores = [-1.0 if p is None else p for p in proba]
            best = scores.index(max(scores))
            cls = classes[best] if classes is not None and len(classes) == len(proba) else best
            out["label"] = _values.text(cls)
            if len(proba) == 2:
                out["value"] = proba[1]
    else:
        out["label"] = _values.text(value)
    return out


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _proba(value: Any) -> list[float | None]:
    seq = _values.plain(value)
    if not isinstance(seq, (list, tuple)):
        return []
    return [_values.number(p) for p in seq]
