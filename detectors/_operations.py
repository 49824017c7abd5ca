"""Operational health of a model over a window, per version and deployment slot.

Latency percentiles are exact (``quantilesExactInclusive``, numpy's linear interpolation) over
the calls' ``latency_ms``; throughput is calls per second of the window; the failure rate is the
share of calls that recorded an error. LLM token counts are summed for cost checks.
"""

from __future__ import annotations

from dataclasses import dataclass

from keelwatch.store import Store

from ._sql import WHERE_WINDOW, Window

__all__ = ["Operations", "operations"]


@dataclass(frozen=True)
class Operations:
    version: str
    slot: str
    calls: int
    failures: int
    failure_rate: float
    throughput_per_s: float
    latency_p50_ms: float
    latency_p95_ms: float
    latency_p99_ms: float
    prompt_tokens: int
    completion_tokens: int


def operations(store: Store, window: Window) -> tuple[Operations, ...]:
    """One row per (version, slot) seen in ``window``."""
    seconds = max((window.end - window.start).total_seconds(), 1e-9)
    rows = store.query(
        "SELECT version, slot, count() AS n, countIf(error != '') AS failed, "
        "quantilesExactInclusive(0.5, 0.95, 0.99)(latency_ms) AS q, "
        "sum(prompt_tokens) AS pt, sum(completion_tokens) AS ct "
        f"FROM predictions WHERE {WHERE_WINDOW} GROUP BY version, slot ORDER BY version, slot",
        window.params(),
    ).to_pylist()
    out = []
    for r in rows:
        p50, p95, p99 = (float(q) for q in r["q"])
        out.append(
            Operations(
                str(r["version"]),
                str(r["slot"]),
                int(r["n"]),
                int(r["failed"]),
                int(r["failed"]) / int(r["n"]),
                int(r["n"]) / seconds,
                p50,
                p95,
                p99,
                int(r["pt"]),
                int(r["ct"]),
            )
        )
    return tuple(out)
