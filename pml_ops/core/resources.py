"""What a stage cost: wall time and peak memory, for its metrics file, and the cores it may use.

began = time.perf_counter()
...
metrics.update(resource_metrics(began))   # {"wall_time_s": ..., "peak_rss_mib": ...}
"""

from __future__ import annotations

import ctypes
import os
import resource
import sys
import time
from pathlib import Path

# glibc's mallopt(3) parameters
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_MAX = 32 * 2**20  # glibc's upper limit on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX)
TRIM_THRESHOLD = 2**31 - 1  # mallopt takes an int: keep up to 2 GiB of free heap top


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


def retain_freed_memory() -> bool:
    """Have glibc's malloc keep freed memory for reuse instead of returning it to the kernel: serve
    allocations up to 32 MiB from the heap (not a fresh mmap each) and never trim the heap top.

    torch frees and reallocates the same activation and gradient buffers at every training step;
    by default glibc returns those over its dynamic threshold to the kernel, and each step then
    page-faults them in again (on the development VM ~2,900 minor faults per CVAE step, and oneDNN's
    copies of 1.6 MB activations took 0.7-4.9 ms against 0.1 ms once kept). Peak RSS is bounded as
    before, by the largest live set, not by the freed memory kept.
    False (and nothing changed) where the C library is not glibc."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mapped = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX)
    return bool(mapped) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
