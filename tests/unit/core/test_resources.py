"""Stage resource metrics: wall time and the peak RSS of the stage process or its children."""

from __future__ import annotations

import json
import platform
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

# A fresh process: its peak before and after a child that touches 150 MiB more than that (written
# bytes, so the pages are resident), and the metrics it would write.
PROBE = """
import json, subprocess, sys, time
from pml_ops.core.resources import peak_rss_mib, resource_metrics
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


# The study's CVAE training step at batch 128, one thread: minor page faults per step after a
# warm-up. With glibc's defaults torch's freed activation buffers go back to the kernel and each
# step faults them in again (about 2,900 faults per step measured on the development VM).
FAULTS = """
import json, resource, sys
from pml_ops.core.resources import retain_freed_memory
applied = retain_freed_memory() if sys.argv[1] == "retain" else None
import torch
from pml_ops.config import load_params
from pml_ops.density.architectures import build_model
torch.set_num_threads(1)
torch.manual_seed(0)
model = build_model(load_params().cvae.architecture, 0)
x = torch.rand(128, 1, 28, 28).round()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, foreach=True)
def step():
    loss = -model.elbo(x).mean()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
for _ in range(10):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    step()
faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20
print(json.dumps({"applied": applied, "faults_per_step": faults}))
"""


def _faults(variant: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", FAULTS, variant], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt(3) is glibc's")
def test_retained_freed_memory_stops_the_training_step_faulting_its_buffers_in_again():
    retained, default = _faults("retain"), _faults("default")
    assert retained["applied"] is True
    assert retained["faults_per_step"] < 50
    assert default["faults_per_step"] > 10 * max(retained["faults_per_step"], 1.0)
