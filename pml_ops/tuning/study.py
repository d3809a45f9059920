"""Create or continue a study and spread its trials over worker processes.

Each `run_study` call adds `trials` trials, split exactly over its workers (worker i runs its
own share with `study.optimize(n_trials=share)`), so the total is fixed however the workers
interleave: no trial is lost or run twice. Workers on other machines run the same command
against the same RDB storage and study name and add their own trials. The processes share
nothing but the storage: each opens it, loads the study, and builds its own sampler and pruner.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import optuna

from pml_ops.config import PrunerParams, TrackingParams
from pml_ops.errors import TrialError, TuningError
from pml_ops.tracking import configure, git_commit
from pml_ops.tuning.pruners import build_pruner
from pml_ops.tuning.storage import open_storage, redact
from pml_ops.tuning.task import MlflowTarget, TrialRunner, TuningTask

DIRECTION: Literal["maximize"] = "maximize"  # the validation ELBO
STUDY_RUN = "mlflow_run_id"  # study user attr: the MLflow run the trials nest under


@dataclass(frozen=True)
class StudyPlan:
    """One `tune` run: which study, where, and how much work it adds."""

    study_name: str
    storage: str  # a resolved URL (see `storage.resolve_storage`)
    trials: int
    timeout_s: float | None
    workers: int
    seed: int
    pruner: PrunerParams
    max_epochs: int


@dataclass(frozen=True)
class WorkerJob:
    plan: StudyPlan
    task: TuningTask
    target: MlflowTarget
    trials: int
    seed: int


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
        storage=open_storage(plan.storage),
        sampler=optuna.samplers.TPESampler(seed=job.seed),
        pruner=build_pruner(plan.pruner, plan.max_epochs),
    )
    evaluate = job.task.prepare()
    runner = TrialRunner(job.task, evaluate, job.target)
    before = len(study.get_trials(deepcopy=False))
    study.optimize(
        runner,
        n_trials=job.trials,
        timeout=plan.timeout_s,
        catch=(*job.task.failures, TrialError),
    )
    return len(study.get_trials(deepcopy=False)) - before


def open_study(plan: StudyPlan) -> optuna.Study:
    """Create the study, or load it if it exists (running again continues it)."""
    study = optuna.create_study(
        study_name=plan.study_name,
        storage=open_storage(plan.storage),
        direction=DIRECTION,
        load_if_exists=True,
    )
    if study.direction != optuna.study.StudyDirection.MAXIMIZE:
        raise TuningError(f"study '{plan.study_name}' exists but does not maximise; pick another name")
    return study


def study_run(study: optuna.Study, plan: StudyPlan, task: TuningTask, experiment_id: str) -> str:
    """The study's MLflow run: the one recorded in the study if this store has it, else a new one."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

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
        },
    )
    study.set_user_attr(STUDY_RUN, run.info.run_id)
    return run.info.run_id


def run_study(
    plan: StudyPlan, task: TuningTask, tracking: TrackingParams, project_dir: Path | None = None
) -> tuple[optuna.Study, str]:
    """Add `plan.trials` trials to the study with `plan.workers` processes.

    Returns the study (reloaded, with every worker's trials) and its MLflow run id.
    """
    import mlflow

    study = open_study(plan)
    experiment_id = configure(tracking, project_dir)
    parent = study_run(study, plan, task, experiment_id)
    target = MlflowTarget(mlflow.get_tracking_uri(), experiment_id, parent)
    before = len(study.get_trials(deepcopy=False))
    jobs = [
        WorkerJob(plan, task, target, share, worker_seed(plan.seed, before, index))
        for index, share in enumerate(split_trials(plan.trials, plan.workers))
    ]
    try:
        if len(jobs) == 1:
            run_worker(jobs[0])
        else:
            context = multiprocessing.get_context("spawn")  # no forked torch/SQLAlchemy state
            with ProcessPoolExecutor(max_workers=len(jobs), mp_context=context) as pool:
                list(pool.map(run_worker, jobs))
    except BaseException:
        from mlflow.tracking import MlflowClient

        MlflowClient().set_terminated(parent, "FAILED")
        raise
    return optuna.load_study(study_name=plan.study_name, storage=open_storage(plan.storage)), parent
