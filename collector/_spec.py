"""Values that cross from the hot path to the sender: what a decorated function records, and the
raw, unconverted entries appended to the queue."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from ._config import MaskFunc

TASKS = ("auto", "classification", "regression", "llm")


@dataclasses.dataclass(frozen=True, eq=False)
class MonitorSpec:
    """The options of one ``@monitor`` decoration (see ``monitor``)."""

    fn: Callable[..., Any]
    model: str
    version: str = ""
    slot: str = ""
    features: frozenset[str] | None = None
    feature_names: Sequence[str] | None = None
    output: Callable[[Any], Any] | None = None
    tags: Mapping[str, str] = dataclasses.field(default_factory=dict)
    sample_rate: float | None = None
    allow: frozenset[str] | None = None
    deny: frozenset[str] = frozenset()
    mask: MaskFunc | None = None
    task: str = "auto"
    classes: Sequence[Any] | None = None


class RawCall(NamedTuple):
    """One observed call, as cheap as it can be captured: references, no conversion."""

    spec: MonitorSpec
    seq: int  # the prediction id's counter value (see ``_ids``)
    ts: float
    latency_s: float
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    result: Any
    error: BaseException | None
    trace: Any  # the OpenTelemetry context current at the call, or None
    streamed: bool = False


class RawOutcome(NamedTuple):
    """One ``log_outcome`` call."""

    prediction_id: str
    model: str | None
    ts: float
    label: Any
    value: Any


class FlushMarker(NamedTuple):
    """Queued by ``flush``: everything queued before it must be sent before ``done`` is set."""

    done: Any  # threading.Event
    result: list[bool]
