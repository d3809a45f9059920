"""What a stage cost: wall time and peak memory, for its metrics file, and the cores it may use.

began = time.perf_counter()
...
metrics.update(resource_metrics(began))   # {"wall_time_s": ..., "peak_rss_mib": ...}
"""

from __future__ import annotations

import os
import resource
import sys
import time


def usable_cpus() -> int:
    """The cores this process may run on (its CPU affinity: a container's or taskset's limit),
    not the machine's count; os.cpu_count() where affinity is not exposed (macOS)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def peak_rss_mib() -> float:
    """Peak resident set size of this process or of its largest finished child process (chain
    workers, data loaders), in MiB: `getrusage` keeps the maximum of each, not their sum."""
    unit = 1.0 if sys.platform == "darwin" else 1024.0  # ru_maxrss: bytes on macOS, KiB on Linux
    peak = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    )
    return peak * unit / 2**20


def resource_metrics(began: float) -> dict[str, float]:
    """Wall seconds since `began` (a `time.perf_counter()` reading) and the peak RSS so far."""
    return {"wall_time_s": time.perf_counter() - began, "peak_rss_mib": peak_rss_mib()}
