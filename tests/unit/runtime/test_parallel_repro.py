"""`pml-ops repro` (pml_ops/runtime/parallel_repro.py) on small DVC pipelines of its own: stages side by
side on cores of their own, dvc.lock as after `dvc repro`, a failure, a stop."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from pml_ops.core.resources import usable_cpus
from tests.conftest import SMOKE_PROFILE, VENV_BIN, run

# Each of `left` and `right` writes a marker, then waits for the other's: run one at a time they
# would both time out, so passing means they ran at the same time.
MEET = textwrap.dedent(
    """
    import json, os, pathlib, sys, time
    me, other = sys.argv[1], sys.argv[2]
    pathlib.Path(f"marker_{me}").touch()
    deadline = time.monotonic() + 60
    while not pathlib.Path(f"marker_{other}").exists():
        if time.monotonic() > deadline:
            sys.exit(f"{me}: {other} never ran beside me")
        time.sleep(0.05)
    pathlib.Path(f"out_{me}.json").write_text(json.dumps(sorted(os.sched_getaffinity(0))))
    """
)
AFFINITY = (
    "import json, os, pathlib, sys; "
    "pathlib.Path(sys.argv[1]).write_text(json.dumps(sorted(os.sched_getaffinity(0))))"
)


def pipeline(tmp_path: Path, stages: dict[str, dict]) -> tuple[Path, dict[str, str]]:
    """A git + DVC repository holding `stages` in dvc.yaml."""
    repo = tmp_path / "repo"
    repo.mkdir()
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    (repo / "meet.py").write_text(MEET)
    (repo / "affinity.py").write_text(AFFINITY)
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}))
    run(["git", "init", "-q"], repo)
    run(["dvc", "init", "-q"], repo, env)
    run(["dvc", "config", "core.analytics", "false"], repo, env)
    return repo, env


def repro(repo: Path, env: dict[str, str], *args: str, **popen) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pml_ops.cli.main", "repro", *args],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        **popen,
    )


needs_two_cores = pytest.mark.skipif(usable_cpus() < 2, reason="side-by-side stages need 2 usable cores")


@needs_two_cores
def test_independent_stages_run_side_by_side_on_a_core_each_and_dvc_lock_is_complete(tmp_path):
    repo, env = pipeline(
        tmp_path,
        {
            "left": {"cmd": "python meet.py left right", "deps": ["meet.py"], "outs": ["out_left.json"]},
            "right": {"cmd": "python meet.py right left", "deps": ["meet.py"], "outs": ["out_right.json"]},
            "join": {
                "cmd": "python affinity.py out_join.json",
                "deps": ["out_left.json", "out_right.json", "affinity.py"],
                "outs": ["out_join.json"],
            },
        },
    )
    result = repro(repo, env, "--jobs", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    left, right = (json.loads((repo / f"out_{name}.json").read_text()) for name in ("left", "right"))
    assert len(left) == len(right) == 1 and left != right
    cores = sorted(os.sched_getaffinity(0))
    assert json.loads((repo / "out_join.json").read_text()) == cores  # alone: every core
    assert "pml-ops repro: 3 stage(s)" in result.stdout
    assert "left | Running stage 'left'" in result.stdout  # each line names its stage

    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    assert set(lock["stages"]) == {"left", "right", "join"}
    status = run(["dvc", "status", "--json"], repo, env)
    assert json.loads(status.stdout) == {}

    again = repro(repo, env)
    assert again.returncode == 0
    assert "every stage is up to date" in again.stdout


def test_only_changed_stages_and_those_after_them_run(tmp_path):
    repo, env = pipeline(
        tmp_path,
        {
            "first": {"cmd": "python affinity.py a.json", "deps": ["affinity.py"], "outs": ["a.json"]},
            "second": {"cmd": "cp a.json b.json", "deps": ["a.json"], "outs": ["b.json"]},
            "apart": {"cmd": "echo x > c.txt", "outs": ["c.txt"]},
        },
    )
    assert repro(repo, env).returncode == 0
    (repo / "affinity.py").write_text(AFFINITY + "  # changed\n")
    dry = repro(repo, env, "--dry")
    assert dry.returncode == 0
    listed = [line.split(" ")[0] for line in dry.stdout.splitlines()]
    assert listed == ["first", "second"]
    assert "second (" in dry.stdout and "after: first" in dry.stdout


def test_a_failed_stage_is_named_its_dependents_never_start_and_the_exit_status_is_2(tmp_path):
    repo, env = pipeline(
        tmp_path,
        {
            "broken": {"cmd": "python -c \"import sys; print('the reason'); sys.exit(3)\"", "outs": ["x"]},
            "after": {"cmd": "touch y", "deps": ["x"], "outs": ["y"]},
        },
    )
    result = repro(repo, env, "--jobs", "1")
    assert result.returncode == 2
    assert "pml-ops: error: broken failed; not started: after" in result.stderr
    assert "the reason" in result.stderr  # the failed stage's last lines
    assert not (repo / "y").exists()


def test_a_stop_reaches_the_running_stages(tmp_path):
    repo, env = pipeline(
        tmp_path,
        {
            "slow": {
                "cmd": 'python -c "import os, time; '
                "open('pid', 'w').write(str(os.getpid())); time.sleep(120)\"",
                "outs": ["never"],
            }
        },
    )
    runner = subprocess.Popen(
        [sys.executable, "-m", "pml_ops.cli.main", "repro"],
        cwd=repo,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    pid_file = repo / "pid"
    deadline = time.monotonic() + 60
    while not (pid_file.exists() and pid_file.read_text()):
        assert time.monotonic() < deadline and runner.poll() is None, runner.communicate()
        time.sleep(0.1)
    stage_pid = int(pid_file.read_text())
    runner.send_signal(signal.SIGTERM)
    _, stderr = runner.communicate(timeout=60)
    assert runner.returncode == 143, stderr
    assert "stopped by SIGTERM" in stderr
    deadline = time.monotonic() + 10
    while Path(f"/proc/{stage_pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{stage_pid}").exists()


def test_jobs_must_be_positive(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "pml_ops.cli.main", "repro", "--jobs", "0"], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "--jobs" in result.stderr


@pytest.mark.e2e
@needs_two_cores
def test_the_smoke_pipeline_side_by_side_ends_as_its_dvc_repro_does(pipeline_run, temp_clone, stage_env):
    """Every stage of the real pipeline through `pml-ops repro --jobs 2`: the same stages in
    dvc.lock as the session's `dvc repro`, nothing left to run, the same data, one finished
    MLflow run per stage in the shared SQLite store, each stage on one core while another ran."""
    from mlflow.tracking import MlflowClient

    from pml_ops.config import profiles

    session, _, _ = pipeline_run
    profiles.main(["apply", str(temp_clone / SMOKE_PROFILE), str(temp_clone / "params.yaml")])
    result = repro(temp_clone, stage_env, "--jobs", "2")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    ours, theirs = (
        yaml.safe_load((clone / "dvc.lock").read_text())["stages"] for clone in (temp_clone, session)
    )
    assert set(ours) == set(theirs)

    def data_out(stages: dict) -> dict:
        return next(out for out in stages["prepare"]["outs"] if out["path"] == "data/mnist.npz")

    assert data_out(ours) == data_out(theirs)  # the same data, the same hash
    status = run(["dvc", "status", "dvc.yaml", "--json"], temp_clone, stage_env)
    assert json.loads(status.stdout) == {}

    started = dict(re.findall(r"pml-ops repro: (\S+) started on core\(s\) (\S+)", result.stdout))
    assert set(started) == set(ours)
    trainings = [name for name in started if name.startswith("train@")]
    assert trainings and all("," not in started[name] for name in trainings)

    def runs(clone: Path) -> list[tuple[str, str]]:
        client = MlflowClient(f"sqlite:///{clone / 'mlflow.db'}")
        experiment = client.get_experiment_by_name("pml-ops")
        found = client.search_runs([experiment.experiment_id], max_results=500)
        return sorted((run.info.run_name, run.info.status) for run in found)

    assert runs(temp_clone) == runs(session)
    assert all(status == "FINISHED" for _, status in runs(temp_clone))


def test_an_unknown_target_or_no_dvc_repository_is_a_one_line_error(tmp_path):
    repo, env = pipeline(tmp_path, {"only": {"cmd": "echo x > x", "outs": ["x"]}})
    unknown = repro(repo, env, "no_such_stage")
    assert unknown.returncode == 2
    assert "pml-ops: error: cannot plan `dvc repro no_such_stage`" in unknown.stderr
    assert "Traceback" not in unknown.stderr
    bare = tmp_path / "bare"
    bare.mkdir()
    outside = repro(bare, env)
    assert outside.returncode == 2
    assert "pml-ops: error: cannot plan" in outside.stderr and "Traceback" not in outside.stderr
