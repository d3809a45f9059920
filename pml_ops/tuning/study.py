"""Create or continue a study and spread its trials over worker processes.

Each `run_study` call adds `trials` trials, split exactly over its workers (worker i runs its
own share with `study.optimize(n_trials=share)`), so the total is fixed however the workers
interleave: no trial is lost or run twice. Workers on other machines run the same command
against the same RDB storage and study name and add their own trials. The processes share
nothing but the storage: each opens it, loads the study, and builds its own sampler.

The study is multi-objective: validation ELBO (maximised) and training MFLOP per image
(minimised), sampled by TPE (multi-objective TPE in Optuna); `study.best_trials` is its Pareto
front. Optuna does not prune multi-objective studies, so no pruner is configured.

Faults: a worker process that dies is noticed by this command, which fails its unfinished trial,
queues it to run again and starts a replacement for the rest of its share; a worker anywhere
that stops sending heartbeats has its trial failed and queued again by the next worker that
starts a trial (Optuna's heartbeat on the RDB storage).
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import sys
import time
import traceback
import warnings
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import optuna
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from pml_ops.config import HeartbeatParams, TrackingParams
from pml_ops.core.errors import TrialError, TuningError
from pml_ops.core.resources import retain_freed_memory
from pml_ops.runtime.stage import die_with_parent, ignore_stops, install_stop_handlers, note_kept, stop_signal
from pml_ops.tracking.provenance import LOCK_DIGEST_TAG, git_commit, lock_digest
from pml_ops.tracking.store import configure
from pml_ops.tuning.storage import open_storage, redact
from pml_ops.tuning.task import (
    COST,
    FAIL_REASON,
    OBJECTIVE,
    STOPPED,
    WORKER,
    MlflowTarget,
    StaleTrialCallback,
    TrialRunner,
    TuningTask,
)

OBJECTIVES = (OBJECTIVE, COST)  # Optuna's metric names of the study's two objectives
DIRECTIONS = (optuna.study.StudyDirection.MAXIMIZE, optuna.study.StudyDirection.MINIMIZE)
STUDY_RUN = "mlflow_run_id"  # study user attr: the MLflow run the trials nest under
WORKER_GONE = "its worker process ended"  # fail reason of a trial whose local worker died
STOP_WAIT_S = 30.0  # after a stop, how long workers get to record their trials
TrialState = optuna.trial.TrialState


@dataclass(frozen=True)
class StudyPlan:
    """One `tune` run: which study, where, and how much work it adds."""

    study_name: str
    storage: str  # a resolved URL (see `storage.resolve_storage`)
    trials: int
    timeout_s: float | None
    workers: int
    seed: int
    heartbeat: HeartbeatParams
    max_train_cost: float | None = None  # MFLOP per image: costlier trials are pruned untrained


@dataclass(frozen=True)
class WorkerJob:
    plan: StudyPlan
    task: TuningTask
    target: MlflowTarget
    trials: int
    seed: int
    timeout_s: float | None


def split_trials(total: int, workers: int) -> list[int]:
    """Shares of `total` trials for at most `workers` workers: sizes differ by at most one."""
    count = min(total, workers)
    base, extra = divmod(total, count)
    return [base + (1 if index < extra else 0) for index in range(count)]


def worker_seed(seed: int, trials_before: int, index: int) -> int:
    """Independent sampler seeds per worker and per continuation of a study."""
    return int(np.random.SeedSequence([seed, trials_before, index]).generate_state(1)[0])


def run_worker(job: WorkerJob) -> int:
    """Run one worker's share of trials; return how many trials it ran."""
    plan = job.plan
    study = optuna.load_study(
        study_name=plan.study_name,
        storage=open_storage(plan.storage, plan.heartbeat, job.target.uri),
        sampler=optuna.samplers.TPESampler(seed=job.seed),
    )
    evaluate = job.task.prepare()
    runner = TrialRunner(job.task, evaluate, job.target, plan.max_train_cost)
    before = len(study.get_trials(deepcopy=False))
    study.optimize(
        runner,
        n_trials=job.trials,
        timeout=job.timeout_s,
        catch=(*job.task.failures, TrialError),
    )
    return len(study.get_trials(deepcopy=False)) - before


def _worker_main(job: WorkerJob, results: Connection) -> None:
    """A worker process: run its share, then report ("done", n), ("stopped", signal) or
    ("error", message). It dies with the `tune` process that started it."""
    die_with_parent()
    install_stop_handlers()
    retain_freed_memory()
    try:
        results.send(("done", run_worker(job)))
    except KeyboardInterrupt as error:  # SIGINT or SIGTERM: the trial is already recorded
        ignore_stops()
        results.send(("stopped", stop_signal(error)))
    except BaseException as error:
        ignore_stops()
        traceback.print_exc()
        results.send(("error", "".join(traceback.format_exception_only(error)).strip()))


@dataclass
class _Worker:
    index: int
    job: WorkerJob
    process: multiprocessing.process.BaseProcess
    results: Connection
    restarts: int = 0

    @property
    def id(self) -> str:
        return f"{socket.gethostname()}:{self.process.pid}"


def _exit_description(code: int | None) -> str:
    if code is not None and code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit status {code}"


def fail_trials_of(study: optuna.Study, worker: str, reason: str, callback: StaleTrialCallback) -> list[int]:
    """Fail the trials `worker` left unfinished (still RUNNING, or stopped by a signal) and hand
    each to `callback` (MLflow run KILLED, retry queued); return their numbers."""
    storage = study._storage
    failed = []
    for trial in study.get_trials(deepcopy=False):
        if trial.user_attrs.get(WORKER) != worker:
            continue
        if trial.state == TrialState.RUNNING:
            try:
                storage.set_trial_user_attr(trial._trial_id, FAIL_REASON, reason)
                storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
            except optuna.exceptions.UpdateFinishedTrialError:
                continue  # finished (or failed by a heartbeat check) meanwhile
        elif not (
            trial.state == TrialState.FAIL and trial.user_attrs.get(FAIL_REASON, "").startswith(STOPPED)
        ):
            continue
        callback(study, storage.get_trial(trial._trial_id))
        failed.append(trial.number)
    return failed


def _finished_by(study: optuna.Study, worker: str) -> int:
    """Trials `worker` finished for good (complete, pruned, or failed for a reason of their own)."""
    count = 0
    for trial in study.get_trials(deepcopy=False):
        if trial.user_attrs.get(WORKER) != worker or not trial.state.is_finished():
            continue
        interrupted = trial.state == TrialState.FAIL and (
            trial.user_attrs.get(FAIL_REASON, "").startswith(STOPPED)
            or trial.user_attrs.get(FAIL_REASON, "").startswith(WORKER_GONE)
        )
        count += not interrupted
    return count


class _Supervisor:
    """Worker processes that share nothing but the storage. One that dies (kill -9, out of
    memory) leaves the others running: its unfinished trial is failed and queued again, and a
    replacement runs the rest of its share (at most `heartbeat.worker_restarts` times)."""

    def __init__(self, plan: StudyPlan, study: optuna.Study, jobs: list[WorkerJob]) -> None:
        self.plan = plan
        self.study = study
        self.context = multiprocessing.get_context("spawn")  # no forked torch/SQLAlchemy state
        self.deadline = None if plan.timeout_s is None else time.monotonic() + plan.timeout_s
        self.callback = StaleTrialCallback(plan.heartbeat.max_retry, jobs[0].target.uri)
        self.workers = [self._start(index, job) for index, job in enumerate(jobs)]

    def _start(self, index: int, job: WorkerJob, restarts: int = 0) -> _Worker:
        receive, send = self.context.Pipe(duplex=False)
        process = self.context.Process(target=_worker_main, args=(job, send), name=f"tune-worker-{index}")
        process.start()
        send.close()
        return _Worker(index, job, process, receive, restarts)

    def run(self) -> None:
        while self.workers:
            sentinels: dict[Any, _Worker] = {worker.process.sentinel: worker for worker in self.workers}
            for sentinel in multiprocessing.connection.wait(list(sentinels)):
                self._finished(sentinels[sentinel])

    def _finished(self, worker: _Worker) -> None:
        worker.process.join()
        self.workers.remove(worker)
        try:
            message = worker.results.recv() if worker.results.poll() else None
        except EOFError:  # the worker died before reporting (poll() is true at end of file)
            message = None
        if message is not None and message[0] == "done":
            return
        if message is not None and message[0] == "error":
            self.stop()
            raise TuningError(f"tuning worker {worker.index} failed: {message[1]}")
        how = _exit_description(worker.process.exitcode)
        if message is not None and message[0] == "stopped":
            how = f"stopped by {signal.Signals(message[1]).name}"
        reason = f"{WORKER_GONE} ({how})"
        failed = fail_trials_of(self.study, worker.id, reason, self.callback)
        remaining = worker.job.trials - _finished_by(self.study, worker.id)
        timeout = None if self.deadline is None else self.deadline - time.monotonic()
        note = f"tune: worker {worker.index} (pid {worker.process.pid}) {how}"
        if failed:
            note += f"; its trial(s) {failed} failed and queued to run again"
        if remaining <= 0 or (timeout is not None and timeout <= 0):
            print(note, file=sys.stderr)
            return
        if worker.restarts >= self.plan.heartbeat.worker_restarts:
            self.stop()
            raise TuningError(
                f"{note}; it died {worker.restarts + 1} times, more than "
                f"tuning.heartbeat.worker_restarts={self.plan.heartbeat.worker_restarts}"
            )
        print(f"{note}; a new worker runs its {remaining} remaining trial(s)", file=sys.stderr)
        job = replace(worker.job, trials=remaining, timeout_s=timeout, seed=worker.job.seed + 1)
        self.workers.append(self._start(worker.index, job, worker.restarts + 1))

    def stop(self) -> None:
        """SIGTERM every worker (each records its trial as stopped and its run as KILLED), then
        kill those still there after `STOP_WAIT_S` and fail what they left."""
        for worker in self.workers:
            if worker.process.is_alive() and worker.process.pid is not None:
                os.kill(worker.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_WAIT_S
        for worker in self.workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
                fail_trials_of(self.study, worker.id, f"{WORKER_GONE} (killed after a stop)", self.callback)
        self.workers = []


def open_study(plan: StudyPlan, mlflow_uri: str | None = None) -> optuna.Study:
    """Create the study, or load it if it exists (running again continues it). A study of
    another kind under the name (the single-objective studies of earlier versions) is refused."""
    study = optuna.create_study(
        study_name=plan.study_name,
        storage=open_storage(plan.storage, plan.heartbeat, mlflow_uri),
        directions=list(DIRECTIONS),
        load_if_exists=True,
    )
    if tuple(study.directions) != DIRECTIONS:
        kinds = ", ".join(direction.name.lower() for direction in study.directions)
        raise TuningError(
            f"study '{plan.study_name}' in {redact(plan.storage)} has objective(s) ({kinds}), not "
            f"({', '.join(OBJECTIVES)}) = (maximize, minimize): it was made by an earlier, "
            "single-objective version; give this study another name (--study-name, or "
            "tuning.<model>.study_name) or delete the old one (optuna delete-study)"
        )
    if study.metric_names is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(list(OBJECTIVES))
    return study


def study_run(study: optuna.Study, plan: StudyPlan, task: TuningTask, experiment_id: str) -> str:
    """The study's MLflow run: the one recorded in the study if this store has it, else a new one."""
    client = MlflowClient()
    run_id = study.user_attrs.get(STUDY_RUN)
    if run_id:
        try:
            run = client.get_run(run_id)
        except MlflowException:
            run = None
        if run is not None and run.info.experiment_id == experiment_id:
            client.update_run(run_id, status="RUNNING")
            return run_id
    run = client.create_run(
        experiment_id,
        run_name=f"tune-{plan.study_name}",
        tags={
            "pml_ops.stage": "tune",
            "pml_ops.model": task.model,
            "optuna.study": plan.study_name,
            "optuna.storage": redact(plan.storage),
            "git_commit": git_commit(),
            LOCK_DIGEST_TAG: lock_digest(),
        },
    )
    study.set_user_attr(STUDY_RUN, run.info.run_id)
    return run.info.run_id


def run_study(
    plan: StudyPlan, task: TuningTask, tracking: TrackingParams, project_dir: Path | None = None
) -> tuple[optuna.Study, str]:
    """Add `plan.trials` trials to the study with `plan.workers` processes.

    Returns the study (reloaded, with every worker's trials) and its MLflow run id. Stopped by
    SIGINT or SIGTERM, it stops its workers, ends the study's run as KILLED and re-raises.
    """
    experiment_id = configure(tracking, project_dir)
    uri = mlflow.get_tracking_uri()
    study = open_study(plan, uri)
    parent = study_run(study, plan, task, experiment_id)
    target = MlflowTarget(uri, experiment_id, parent)
    before = len(study.get_trials(deepcopy=False))
    jobs = [
        WorkerJob(plan, task, target, share, worker_seed(plan.seed, before, index), plan.timeout_s)
        for index, share in enumerate(split_trials(plan.trials, plan.workers))
    ]
    supervisor = None
    try:
        if len(jobs) == 1:
            run_worker(jobs[0])
        else:
            supervisor = _Supervisor(plan, study, jobs)
            supervisor.run()
    except BaseException as error:
        signum = stop_signal(error)
        if signum is not None:
            ignore_stops()
        if supervisor is not None:
            supervisor.stop()
        client = MlflowClient(uri)
        if signum is not None:
            client.set_tag(parent, "pml_ops.stopped_by", signal.Signals(signum).name)
            complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            note_kept(
                f"{len(complete)} complete trial(s) of study '{plan.study_name}' in {redact(plan.storage)}"
                f" (the same command continues it); MLflow run {parent} (KILLED)"
            )
        client.set_terminated(parent, "KILLED" if signum is not None else "FAILED")
        raise
    return optuna.load_study(study_name=plan.study_name, storage=open_storage(plan.storage)), parent
