"""Faults: SIGTERM or SIGINT on a running stage, and `dvc repro` killed under a running stage.

A stopped stage ends its MLflow run as KILLED, prints one line saying what it kept and exits
143 (SIGTERM) or 130 (SIGINT) without a traceback. A stage whose DVC dies (SIGKILL, so DVC cannot
pass anything on) gets SIGTERM from the kernel, directly or through the shell DVC started it in,
and writes nothing afterwards.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
import yaml
from mlflow.tracking import MlflowClient

from tests.conftest import REPO_ROOT
from tests.helpers.faults.fault_params import fault_params

T = TypeVar("T")

STAGE = [sys.executable, "-m", "tests.helpers.faults.fault_helpers", "stage"]


def _env() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PML_OPS_PROGRESS": "0", "PML_OPS_RUN_GROUP": "stops"}
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


def _started(process: subprocess.Popen) -> tuple[int, str]:
    """Read the stage's 'pid P run R' line."""
    line = process.stdout.readline()
    match = re.fullmatch(r"pid (\d+) run (\w+)\n", line)
    assert match, (
        f"unexpected stage output {line!r}; stderr: {process.stderr.read() if process.poll() else ''}"
    )
    return int(match[1]), match[2]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return status != "Z"  # a zombie has exited


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["SIGTERM", "SIGINT"]
)
def test_stopped_stage_ends_its_run_killed_and_says_what_it_kept(tmp_path, signum, code):
    params_file = fault_params(tmp_path, "sqlite:///unused.db")
    output = tmp_path / "output.txt"
    process = subprocess.Popen(
        [*STAGE, str(params_file), str(output), "60"],
        cwd=REPO_ROOT,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _, run_id = _started(process)
        process.send_signal(signum)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == code
    assert "Traceback" not in err
    checkpoint = tmp_path / "checkpoints" / "sleeper.pt"
    expected = (
        f"pml-ops: stopped by {signum.name}; kept: MLflow run {run_id} (KILLED); checkpoint {checkpoint}"
    )
    lines = err.strip().splitlines()  # MLflow's own log lines about creating its store come first
    assert lines[-1] == expected and sum(line.startswith("pml-ops:") for line in lines) == 1
    assert not output.exists()
    tracking = yaml.safe_load(params_file.read_text())["tracking"]["uri"]
    run = MlflowClient(tracking).get_run(run_id)
    assert run.info.status == "KILLED" and run.data.tags["pml_ops.stopped_by"] == signum.name


@pytest.mark.parametrize("through_shell", [False, True], ids=["direct", "through-a-shell"])
def test_stage_dies_with_a_killed_dvc_and_writes_nothing_after(tmp_path, through_shell):
    params_file = fault_params(tmp_path, "sqlite:///unused.db")
    output = tmp_path / "output.txt"
    stage = [*STAGE, str(params_file), str(output), "5"]
    if through_shell:  # as DVC runs a stage: `$SHELL -c CMD`; `; true` keeps the shell waiting
        stage = ["bash", "-c", " ".join(stage) + "; true"]
    # A stand-in for `dvc repro`: starts the stage and waits for it, and is killed with SIGKILL.
    dvc = subprocess.Popen(
        [sys.executable, "-c", "import subprocess, sys; subprocess.run(sys.argv[1:])", *stage],
        cwd=REPO_ROOT,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        pid, run_id = _started(dvc)
        still_alive = _kill_then_poll(dvc, lambda: _alive(pid), seconds=20)
        assert not still_alive, "the stage outlived the DVC that started it"  # so it writes no more
    finally:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
    assert not output.exists()
    tracking = yaml.safe_load(params_file.read_text())["tracking"]["uri"]
    run = MlflowClient(tracking).get_run(run_id)
    assert run.info.status == "KILLED" and run.data.tags["pml_ops.stopped_by"] == "SIGTERM"


def _kill_then_poll(process: subprocess.Popen, leftover: Callable[[], T], seconds: float) -> T:
    """SIGKILL `process`, reap it, then poll `leftover()` until it is falsy or `seconds` pass."""
    process.kill()
    process.wait()
    deadline = time.monotonic() + seconds
    while leftover() and time.monotonic() < deadline:
        time.sleep(0.05)
    return leftover()


def _group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of a process group."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


@pytest.mark.e2e
def test_real_dvc_killed_mid_stage_takes_the_stage_with_it(temp_clone, stage_env, mnist_mirror):
    """`dvc repro prepare` killed with SIGKILL (DVC alone, not its group) while the stage
    downloads from a slow mirror: the stage stops too and never writes data/mnist.npz."""
    from pml_ops.data.mnist import MIRROR_ENV
    from tests.e2e.test_interrupt_e2e import SlowMirror

    with SlowMirror(mnist_mirror) as mirror:
        threading.Thread(target=mirror.serve_forever, daemon=True).start()
        env = {**stage_env, MIRROR_ENV: mirror.url}
        dvc = subprocess.Popen(
            ["dvc", "repro", "prepare"],
            cwd=temp_clone,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 120
            while mirror.bytes_sent < 256 * 1024 and time.monotonic() < deadline and dvc.poll() is None:
                time.sleep(0.05)
            assert mirror.bytes_sent >= 256 * 1024, "the stage never started downloading"
            survivors = _kill_then_poll(dvc, lambda: _group_members(dvc.pid), seconds=20)
            sent = mirror.bytes_sent
            time.sleep(2)
            assert mirror.bytes_sent == sent, "something is still downloading"
        finally:
            for pid in _group_members(dvc.pid):
                os.kill(pid, signal.SIGKILL)
            mirror.shutdown()
    assert survivors == [], "the stage outlived the DVC that started it"
    assert not (temp_clone / "data" / "mnist.npz").exists()


LOST_STOP = """
import time
from pml_ops.runtime import stage

def signal_arrives(signum):
    try:
        stage._on_stop_signal(signum, None)
    except KeyboardInterrupt as error:
        return stage.stop_signal(error)
    return None

def check():
    try:
        stage.check_stop()
    except KeyboardInterrupt as error:
        return stage.stop_signal(error)
    return None

print(signal_arrives(2))  # SIGINT raises; say a __del__ swallowed it
print(signal_arrives(15))  # a SIGTERM right after is the same stop: no second raise
print(check())  # the next safe point raises the lost SIGINT again
time.sleep(1.1)
print(signal_arrives(15))  # a later signal while nothing cleans up raises again
stage.ignore_stops()
print(check(), signal_arrives(15))  # during cleanup, nothing interrupts
"""


def test_a_lost_stop_is_raised_again_and_a_second_signal_never_interrupts_the_cleanup():
    result = subprocess.run(
        [sys.executable, "-c", LOST_STOP], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.split("\n") == ["2", "None", "2", "2", "None None", ""]


PARALLEL_CHAINS = """
import numpy as np
from pml_ops.gp.model import GPModel, LogNormalPrior
from pml_ops.inference.nuts import NUTSSettings, sample_posterior

x = np.linspace(-1.0, 1.0, 5)
model = GPModel(x, np.sin(2 * x), 1e-2, LogNormalPrior(0.0, 1.0), LogNormalPrior(0.0, 1.0))
sample_posterior(model, NUTSSettings(2, 10**6, 10**6, 0, 2, 0.8, 8, False, 2.0))  # hours of work
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_chain_workers_die_with_a_sigkilled_sampler():
    """NUTS chains in worker processes: SIGKILL the process running them (it can pass nothing
    on) and the workers are gone within seconds instead of finishing their chains."""
    sampler = subprocess.Popen(
        [sys.executable, "-c", PARALLEL_CHAINS], cwd=REPO_ROOT, env=_env(), start_new_session=True
    )
    try:
        deadline = time.monotonic() + 60
        while len(_group_members(sampler.pid)) < 3 and time.monotonic() < deadline:
            assert sampler.poll() is None, "the sampler exited early"
            time.sleep(0.05)
        workers = [pid for pid in _group_members(sampler.pid) if pid != sampler.pid]
        assert len(workers) == 2, "the two chain workers never started"
        survivors = _kill_then_poll(sampler, lambda: _group_members(sampler.pid), seconds=5)
    finally:
        for pid in _group_members(sampler.pid):
            os.kill(pid, signal.SIGKILL)
    assert survivors == [], "chain workers outlived the sampler"
