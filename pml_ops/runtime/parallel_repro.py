"""`dvc repro` with independent stages side by side, each on cores of its own.

DVC runs a pipeline's stages one at a time. On a small machine two one-thread processes train
more images per second than one process at two threads (docs/results.md: 1.40x for the VAE,
1.31x for the CVAE on 2 cores), and the pipeline's seven models are independent until the
comparison. So this runs the same stages as `dvc repro`, each as its own
`dvc --wait-for-lock repro --single-item STAGE`: DVC still decides whether a stage is changed,
runs its command, caches its outputs and writes its entry in dvc.lock (under its repository
lock, which it releases while a command runs), so dvc.lock and the cache are the same as after
`dvc repro`. Which stages start when is `pml_ops.runtime.schedule.Scheduler`'s business; each runs with
its CPU affinity set to its cores, so `density.cpu_threads: auto` gives it one torch thread per
core it owns.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pml_ops.core.errors import PmlOpsError
from pml_ops.core.resources import usable_cpus
from pml_ops.runtime.schedule import Scheduler

DEFAULT_TARGET = "dvc.yaml"
POLL_S = 0.2
STOP_GRACE_S = 30.0
TAIL_LINES = 40


class ReproError(PmlOpsError):
    """A stage failed; the others that were running finished, nothing new started."""


@dataclass(frozen=True)
class Plan:
    """The stages to run, each with the stages (of this plan) it needs first, and the seconds
    each took last time (its metrics files' `wall_time_s`; absent for a stage never run)."""

    upstream: dict[str, list[str]]
    seconds: dict[str, float]


@dataclass
class StageRun:
    name: str
    cores: list[int]
    process: subprocess.Popen[str]
    started: float
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_LINES))
    reader: threading.Thread | None = None
    wall_s: float | None = None
    returncode: int | None = None


def _last_wall_time(paths: Iterable[Path]) -> float | None:
    for path in paths:
        try:
            value = json.loads(path.read_text()).get("wall_time_s")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(value, int | float):
            return float(value)
    return None


def plan(root: Path, targets: list[str], force: bool = False) -> Plan:
    """The stages `dvc repro TARGETS` would consider (targets and everything they depend on,
    frozen stages left out), reduced to those that are changed now or downstream of one (all of
    them with `force`). Raises ReproError, with DVC's reason, where `root` is not a DVC
    repository or a target names no stage."""
    # deferred: ~0.3 s at import; `pml-ops` imports this module for every command
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        return _plan(Repo, root, targets, force)
    except DvcException as error:
        raise ReproError(f"cannot plan `dvc repro {' '.join(targets)}` in {root}: {error}") from None


def _plan(repo_class: Any, root: Path, targets: list[str], force: bool) -> Plan:
    with repo_class(str(root)) as repo:
        stages = {}
        for target in targets:
            for stage in repo.stage.collect(target, with_deps=True):
                if not stage.frozen:
                    stages[stage.addressing] = stage
        graph = repo.index.graph
        upstream = {
            name: sorted(dep.addressing for dep in graph.successors(stage) if dep.addressing in stages)
            for name, stage in stages.items()
        }
        seconds = {}
        for name, stage in stages.items():
            measured = _last_wall_time(Path(str(out.fs_path)) for out in stage.outs if out.metric)
            if measured is not None:
                seconds[name] = measured
        if force:
            return Plan(upstream, seconds)
        changed = set(repo.status(targets=list(stages), with_deps=False)) & set(stages)
    run = set(changed)
    grew = True
    while grew:  # everything downstream of a changed stage may change too
        grew = False
        for name, deps in upstream.items():
            if name not in run and run.intersection(deps):
                run.add(name)
                grew = True
    return Plan({name: [dep for dep in upstream[name] if dep in run] for name in sorted(run)}, seconds)


def stage_command(name: str, cores: list[int], force: bool) -> list[str]:
    """`dvc repro --single-item` of one stage, started through `pml_ops.runtime.pinned` on `cores`."""
    repro = ["dvc", "--wait-for-lock", "repro", "--single-item", *(["--force"] if force else []), name]
    return [sys.executable, "-m", "pml_ops.runtime.pinned", ",".join(map(str, cores)), "--", *repro]


def _echo(run: StageRun, lock: threading.Lock, out: Callable[[str], None]) -> None:
    assert run.process.stdout is not None
    for line in run.process.stdout:
        run.tail.append(line)
        with lock:
            out(f"{run.name} | {line.rstrip()}")


def _own_cores() -> list[int]:
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(usable_cpus()))


def _start(
    name: str,
    cores: list[int],
    root: Path,
    env: dict[str, str],
    force: bool,
    lock: threading.Lock,
    out: Callable[[str], None],
) -> StageRun:
    """Start stage `name` on `cores`, its output echoed to `out` by a thread of its own."""
    with lock:
        out(f"pml-ops repro: {name} started on core(s) {','.join(map(str, cores))}")
    process = subprocess.Popen(
        stage_command(name, cores, force),
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # stopped as a group, by us, not by the terminal
    )
    run = StageRun(name, cores, process, time.perf_counter())
    run.reader = threading.Thread(target=_echo, args=(run, lock, out), daemon=True)
    run.reader.start()
    return run


def _ended(run: StageRun, code: int) -> None:
    """Record how `run` ended, once its output has all been echoed."""
    assert run.reader is not None
    run.reader.join()
    run.returncode, run.wall_s = code, time.perf_counter() - run.started


def _stop(running: Iterable[StageRun]) -> None:
    """SIGINT every running stage's process group; SIGKILL those still running after STOP_GRACE_S."""
    runs = list(running)
    for run in runs:
        _signal_group(run.process, signal.SIGINT)
    deadline = time.monotonic() + STOP_GRACE_S
    for run in runs:
        try:
            run.process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal_group(run.process, signal.SIGKILL)
            run.process.wait()


def _failure(failed: list[StageRun], never: list[str]) -> ReproError:
    tails = "\n".join(f"--- {run.name} (last lines) ---\n{''.join(run.tail).rstrip()}" for run in failed)
    return ReproError(
        f"{', '.join(run.name for run in failed)} failed; "
        f"{'not started: ' + ', '.join(never) if never else 'every other stage ended'}\n{tails}"
    )


def run_parallel(
    root: Path,
    stages: Plan,
    max_parallel: int,
    force: bool = False,
    out: Callable[[str], None] = print,
    on_start: Callable[[StageRun], None] | None = None,
    on_finish: Callable[[StageRun], None] | None = None,
) -> list[StageRun]:
    """Run `stages` at most `max_parallel` at once, on this process's cores; their output goes to
    `out`, each line prefixed by the stage's name. Returns the runs in the order they ended.
    Raises ReproError naming the failed stages after the running ones have ended; on Ctrl-C or
    SIGTERM the running stages get SIGINT (as from a terminal) and the stop is raised again."""
    cores = _own_cores()
    scheduler = Scheduler(
        stages.upstream,
        stages.seconds,
        cores,
        max_parallel=max_parallel,
        cores_per_stage=max(1, len(cores) // max_parallel),
    )
    env = dict(os.environ)
    lock = threading.Lock()
    running: dict[str, StageRun] = {}
    ended: list[StageRun] = []
    began = time.perf_counter()
    try:
        while not scheduler.complete:
            for name, granted in scheduler.start_next():
                running[name] = _start(name, granted, root, env, force, lock, out)
                if on_start is not None:
                    on_start(running[name])
            time.sleep(POLL_S)
            for name, run in list(running.items()):
                code = run.process.poll()
                if code is None:
                    continue
                _ended(run, code)
                del running[name]
                ended.append(run)
                scheduler.finished(name, succeeded=code == 0)
                if code != 0:
                    scheduler.halt()
                if on_finish is not None:
                    on_finish(run)
                with lock:
                    status = "done" if code == 0 else f"FAILED (exit status {code})"
                    out(f"pml-ops repro: {name} {status} in {run.wall_s:.1f} s")
    except KeyboardInterrupt:
        _stop(running.values())
        raise
    failed = [run for run in ended if run.returncode != 0]
    if failed:
        raise _failure(failed, sorted(scheduler.pending))
    with lock:
        out(f"pml-ops repro: {len(ended)} stage(s) in {time.perf_counter() - began:.1f} s")
    return ended


def _signal_group(process: subprocess.Popen[str], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)
