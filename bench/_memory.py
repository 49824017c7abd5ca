"""Memory of the running process, read from ``/proc/self/status``, for the benchmarks' workers."""

from __future__ import annotations

import threading


def status_mb(field: str) -> float:
    """One ``/proc/self/status`` field (``VmRSS``, ``VmHWM``, ``RssAnon``, ...) in MB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def peak_rss_mb() -> float:
    """Peak RSS so far (``VmHWM``). Not ``ru_maxrss``: a spawned child's starts at its parent's
    RSS at the fork (Linux carries the high-water mark across exec)."""
    return status_mb("VmHWM")


class AnonPeak(threading.Thread):
    """Peak anonymous resident memory (``RssAnon``: heap and buffers, not the pages of mapped
    library code, which are shared and reclaimable), sampled every 10 ms."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = status_mb("RssAnon")
        self._done = threading.Event()
        self.start()

    def run(self) -> None:
        while not self._done.wait(0.01):
            self.peak = max(self.peak, status_mb("RssAnon"))

    def stop(self) -> float:
        self._done.set()
        self.join()
        return max(self.peak, status_mb("RssAnon"))
