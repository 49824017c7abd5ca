"""Store helpers for the benchmarks' workers."""

from __future__ import annotations

import time


def wait_for_merges(store: object, quiet: int = 5) -> None:
    """Until no merge has run and the active parts have not changed for ``quiet`` checks 0.2 s
    apart (so at most about a second of the wait is idle)."""
    state, still = None, 0
    while still < quiet:
        time.sleep(0.2)
        now = store.query(  # type: ignore[attr-defined]
            "SELECT (SELECT count() FROM system.merges) AS merging, "
            "(SELECT groupArraySorted(1000)(name) FROM system.parts WHERE active) AS parts"
        ).to_pylist()[0]
        still = still + 1 if now == state and now["merging"] == 0 else 0
        state = now
