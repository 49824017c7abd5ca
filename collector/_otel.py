"""The current OpenTelemetry span, read only when the application already imported the API.

No import of OpenTelemetry happens here: if ``opentelemetry.trace`` is not in ``sys.modules`` the
cost is one dict lookup. Without a configured tracer provider the current span context is invalid
and nothing is recorded.
"""

from __future__ import annotations

import sys
from typing import Any

_modules = sys.modules


def current_span_context() -> Any:
    """The current span's ``SpanContext`` if valid, else ``None`` (hex ids are made later)."""
    trace = _modules.get("opentelemetry.trace")
    if trace is None:
        return None
    try:
        ctx = trace.get_current_span().get_span_context()
    except Exception:
        return None
    return ctx if ctx.is_valid else None
