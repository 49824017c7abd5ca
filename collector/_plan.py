"""What every record of one decorated function shares, worked out once (``Plan``), and the JSON
encoding of records: the compact encoder, and the C-level one the plan's templates use.

A record of the common shape is formatted from its plan's ``%``-template around one C-level
JSON encoding of its features dict, with no intermediate record dict (``_records``).
"""

from __future__ import annotations

import json
from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any, NamedTuple

from . import _inputs, _outputs
from ._config import Config
from ._spec import MonitorSpec

__all__ = ["NULL_OUTPUT", "NUMBERS", "Plan", "encode", "json_text", "make_plan", "numeric_json"]

NUMBERS = frozenset({float, int})
_STR = frozenset({str})
NULL_OUTPUT = dict.fromkeys(_outputs.KEYS)

# One encoder for all: json.dumps with non-default options builds a new one per call (slow).
_encoder = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


def encode(record: dict[str, Any]) -> bytes:
    """Compact JSON bytes of one record (NaN/Inf are already ``null``)."""
    return _encoder.encode(record).encode()


# JSONEncoder.encode builds a new C encoder on every call, a third of the cost of encoding 20
# numbers. Values made here hold no containers of their own making, so one prebuilt encoder
# without the circular-reference check serves them all (stdlib json; absent where its C
# accelerator is, and then the plain encoder is used).
_c_encoder = (
    None
    if c_make_encoder is None
    else c_make_encoder(
        None, _encoder.default, encode_basestring_ascii, None, ":", ",", False, False, False
    )
)


def json_text(value: Any) -> str:
    """Compact JSON of an acyclic ``value``; ``ValueError`` for NaN/Inf."""
    if _c_encoder is None:
        return _encoder.encode(value)
    return "".join(_c_encoder(value, 0))


def numeric_json(features: dict[Any, Any]) -> str | None:
    """JSON of ``features`` when it is already what the wire wants (``str`` keys, finite ``int``
    / ``float`` values, so ``_values.feature`` would change nothing), else ``None``."""
    if not NUMBERS.issuperset(map(type, features.values())) or not _STR.issuperset(
        map(type, features)
    ):
        return None
    try:
        return json_text(features)
    except ValueError:  # NaN or Inf (or an int too long to print): the general path decides
        return None


class Plan(NamedTuple):
    """What every record of one decorated function shares, worked out once."""

    rate: float
    arity: int  # positional arguments of a call whose one dict argument is the features, or 0
    template: str | None  # %-format of a whole record; None when masking applies
    value_output: str | None  # %-format of the ``output`` of a bare float result, if it maps so
    #: ``arity`` when a call of that many positional arguments, the last a dict of features,
    #: returning a finite float may go straight into Arrow columns (see ``Converter.call``).
    direct: int


def make_plan(spec: MonitorSpec, config: Config) -> Plan:
    """The plan of ``spec``'s records under ``config`` (its templates, sample rate, arity)."""
    rate = spec.sample_rate if spec.sample_rate is not None else config.sample_rate
    masked = (
        spec.allow is not None
        or config.allow is not None
        or spec.deny
        or config.deny
        or spec.mask is not None
        or config.mask is not None
    )
    template = None
    if not masked:
        tags = {str(k): str(v) for k, v in spec.tags.items()}
        head = f'"model":{json_text(spec.model)},"version":{json_text(spec.version)},'
        head += f'"slot":{json_text(spec.slot)},'
        tail = f'"tags":{json_text(tags)},'
        template = (
            '{"prediction_id":"%s",'
            + head.replace("%", "%%")
            + '"ts":%r,"latency_ms":%r,"error":%s,'
            + tail.replace("%", "%%")
            + '"trace_id":"%s","span_id":"%s","features":%s,"output":%s}'
        )
    value_output = None
    if spec.task != "classification":  # then a float result is the output's ``value``
        value_output = json_text({**NULL_OUTPUT, "value": 0.0}).replace("0.0", "%r")
    arity = _inputs.single_arity(spec.fn, spec.features)
    plain = rate >= 1.0 and template is not None and value_output is not None
    direct = arity if plain and spec.output is None else 0
    return Plan(rate, arity, template, value_output, direct)
