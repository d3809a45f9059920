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
from pathlib import Path


def usable_cpus() -> int:
    """The cores this process may run on (its CPU affinity: a container's or taskset's limit),
    not the machine's count; os.cpu_count() where affinity is not exposed (macOS)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _own_peak_kib() -> float:
    """This process's peak RSS. Linux: VmHWM of its own memory map. `getrusage(RUSAGE_SELF)` is
    not used there because it starts from the parent's peak (DVC's, pytest's) at exec."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1])
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if sys.platform == "darwin" else peak  # bytes on macOS


def peak_rss_mib() -> float:
    """Peak resident set size of this process or of its largest finished child process (chain
    workers, data loaders), in MiB: each is a maximum over one process, not a sum. A child's
    figure can include this process's size when it was forked, which is at most our own peak."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if sys.platform == "darwin":
        children /= 1024
    return max(_own_peak_kib(), children) / 1024


def resource_metrics(began: float) -> dict[str, float]:
    """Wall seconds since `began` (a `time.perf_counter()` reading) and the peak RSS so far."""
    return {"wall_time_s": time.perf_counter() - began, "peak_rss_mib": peak_rss_mib()}
