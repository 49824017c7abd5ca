"""OpenTelemetry trace ids, read only when the application already imported the API.

Nothing here imports OpenTelemetry. On the hot path, if ``opentelemetry.context`` is not in
``sys.modules`` the cost is one dict lookup; otherwise the current (immutable) context object is
kept. The sender thread later takes the span from it: a valid span context exists only when a real
tracer provider made the span (or a propagator restored a remote parent), and then its trace and
span ids are recorded in hex.
"""

from __future__ import annotations

import sys
from typing import Any

_modules = sys.modules


def capture() -> Any:
    """The current OpenTelemetry context, or ``None`` (hot path: cheap, never raises)."""
    context = _modules.get("opentelemetry.context")
    if context is None:
        return None
    try:
        return context.get_current()
    except Exception:
        return None


def ids(captured: Any) -> tuple[str, str]:
    """``(trace_id, span_id)`` in hex of the span in a captured context, else ``("", "")``."""
    trace = _modules.get("opentelemetry.trace")
    if captured is None or trace is None:
        return "", ""
    try:
        ctx = trace.get_current_span(captured).get_span_context()
        if not ctx.is_valid:
            return "", ""
        return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")
    except Exception:
        return "", ""
