"""Stage resource metrics: wall time and the peak RSS of the stage process or its children."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO_ROOT

# A fresh process: its peak before and after a child that touches 150 MiB more than that (written
# bytes, so the pages are resident), and the metrics it would write.
PROBE = """
import json, subprocess, sys, time
from pml_ops.resources import peak_rss_mib, resource_metrics
began = time.perf_counter()
before = peak_rss_mib()
child_mib = int(before) + 150  # above anything this process may already report
subprocess.run([sys.executable, "-c", f"b = b'x' * ({child_mib} * 2**20)"], check=True)
print(json.dumps({"before": before, **resource_metrics(began)}))
"""


def test_peak_rss_covers_a_finished_child_process():
    out = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    metrics = json.loads(out.stdout)
    assert set(metrics) == {"before", "wall_time_s", "peak_rss_mib"}
    assert metrics["peak_rss_mib"] >= metrics["before"] + 140  # the finished child's peak counts
    assert 0 < metrics["wall_time_s"] < 60
