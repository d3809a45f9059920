"""What a study tunes (`TuningTask`) and how one trial runs (`TrialRunner`).

A task samples a configuration, counts its cost (training FLOPs per image), trains it while
calling back with the validation ELBO after every epoch, and returns the final validation ELBO.
The runner returns both objectives, (validation ELBO, cost), wraps each trial in an MLflow run
nested under the study's run, prunes before training a trial over the training cost cap, and
records an expected failure (an impossible architecture, a diverging loss) as a failed trial
with its reason, so the study goes on. Optuna cannot prune multi-objective trials on their
per-epoch values; a task may still raise `optuna.TrialPruned` (the per-trial time limit).
"""

from __future__ import annotations

import copy
import math
import os
import signal
import socket
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import mlflow
import optuna
from mlflow.tracking import MlflowClient

from pml_ops.core.errors import TrialError
from pml_ops.runtime.stage import check_stop, ignore_stops, stop_signal
from pml_ops.tracking.provenance import LOCK_DIGEST_TAG, lock_digest
from pml_ops.tracking.store import holding, store_lock

EpochCallback = Callable[[int, float], None]
"""Called after each epoch (1-based) with that epoch's validation ELBO."""

Evaluate = Callable[[dict[str, Any], EpochCallback], float]
"""Train one sampled configuration, call back every epoch, return the final validation ELBO."""

OBJECTIVE = "val_elbo"  # the first objective (maximised): metric name, per epoch and final
COST = "mflop_per_image"  # the second objective (minimised): training MFLOP per image
SECONDS = "seconds_per_epoch"  # trial user attr and metric: training wall time per epoch (measured)
FAIL_REASON = "fail_reason"
PRUNE_REASON = "prune_reason"
MLFLOW_RUN = "mlflow_run_id"
WORKER = "worker"  # host:pid of the process running the trial
EPOCHS_DONE = "epochs_done"  # trial user attr: epochs finished so far (progress, in the storage)
STOPPED = "stopped by"  # how the fail reason of a trial interrupted by a signal begins
NO_HEARTBEAT = "its worker stopped sending heartbeats (killed or lost)"


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def end_trial_run(mlflow_uri: str, run_id: str, reason: str) -> None:
    """End the MLflow run of a trial whose worker is gone as KILLED, with the reason."""
    client = MlflowClient(mlflow_uri)
    if client.get_run(run_id).info.status != "RUNNING":
        return
    client.set_tag(run_id, "optuna.state", "FAIL")
    client.set_tag(run_id, f"optuna.{FAIL_REASON}", reason[:5000])
    client.set_terminated(run_id, "KILLED")


@dataclass(frozen=True)
class StaleTrialCallback:
    """Called for a trial failed because its worker is gone (no heartbeat, or found dead by the
    `tune` process that started it): end its MLflow run as KILLED and queue the same params
    again with Optuna's `RetryHeartbeatStaleTrialCallback` (at most `max_retry` times)."""

    max_retry: int
    mlflow_uri: str | None

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        run_id = trial.user_attrs.get(MLFLOW_RUN)
        if run_id and self.mlflow_uri:
            end_trial_run(self.mlflow_uri, run_id, trial.user_attrs.get(FAIL_REASON, NO_HEARTBEAT))
        retry = copy.deepcopy(trial)  # the retry is a new trial: it gets its own run and worker
        retry.user_attrs = {
            k: v for k, v in trial.user_attrs.items() if k not in (MLFLOW_RUN, WORKER, FAIL_REASON)
        }
        optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=self.max_retry)(study, retry)


class TuningTask(Protocol):
    """One model's tuning problem. Instances are pickled into worker processes."""

    @property
    def model(self) -> str: ...

    @property
    def failures(self) -> tuple[type[Exception], ...]: ...  # errors that fail one trial, not the study

    def sample(self, trial: optuna.Trial) -> dict[str, Any]:
        """Draw one configuration from the search space."""

    def prepare(self) -> Evaluate:
        """Load what every trial needs (data) once per worker process; return the evaluator."""

    def best_section(self, params: dict[str, Any]) -> dict[str, Any]:
        """The best trial's params as the model configuration that training stages read."""

    def cost(self, params: dict[str, Any] | None) -> float:
        """Training MFLOP per image of a sampled configuration (None: the model's own params.yaml
        architecture, the unit of the cost budget). Raises what `failures` names for an
        impossible one."""

    def reference_seconds_per_epoch(self) -> float:
        """Seconds per epoch of the model's own (untuned) configuration under the trial settings:
        the unit of the cost budget, measured in the same run as the trials."""


@dataclass(frozen=True)
class MlflowTarget:
    """Where trial runs go: the store, the experiment and the study's (parent) run."""

    uri: str
    experiment_id: str
    parent_run_id: str


def _check_finite(value: float, where: str) -> float:
    if not math.isfinite(value):
        raise TrialError(f"non-finite validation ELBO ({value}) {where}")
    return float(value)


class TrialRunner:
    """The Optuna objective: one trial of `task`, tracked as a nested MLflow run; returns
    (validation ELBO, training MFLOP per image). A trial costing more than `max_train_cost`
    MFLOP per image is pruned before training."""

    def __init__(
        self,
        task: TuningTask,
        evaluate: Evaluate,
        mlflow_target: MlflowTarget,
        max_train_cost: float | None = None,
    ) -> None:
        self.task = task
        self.evaluate = evaluate
        self.target = mlflow_target
        self.max_train_cost = max_train_cost

    def __call__(self, trial: optuna.Trial) -> tuple[float, float]:
        epochs = 0

        def on_epoch(epoch: int, value: float) -> None:
            nonlocal epochs
            epochs = epoch
            check_stop()
            value = _check_finite(value, f"after epoch {epoch}")
            mlflow.log_metric(OBJECTIVE, value, step=epoch)
            trial.set_user_attr(EPOCHS_DONE, epoch)

        failures: tuple[type[BaseException], ...] = (*self.task.failures, TrialError)
        try:  # from the first statement: a stop at any point ends the trial and its run
            trial.set_user_attr(WORKER, worker_id())
            params = self.task.sample(trial)
            self._start_run(trial, params)
            cost = self._counted_cost(trial, params)
            started = time.perf_counter()
            value = _check_finite(self.evaluate(params, on_epoch), "at the end of training")
            seconds = (time.perf_counter() - started) / max(1, epochs)
        except optuna.TrialPruned as pruned:
            self._end(trial, "PRUNED", "KILLED", PRUNE_REASON, str(pruned))
            raise
        except failures as failure:
            reason = f"{type(failure).__name__}: {failure}"
            self._end(trial, "FAIL", "FAILED", FAIL_REASON, reason)
            raise
        except BaseException as error:  # a bug or a stop signal: record it, then stop the worker
            self._end_interrupted(trial, error)
            raise
        trial.set_user_attr(SECONDS, seconds)
        mlflow.log_metrics({"value": value, SECONDS: seconds})
        mlflow.set_tag("optuna.state", "COMPLETE")
        mlflow.end_run("FINISHED")
        return value, cost

    def _start_run(self, trial: optuna.Trial, params: dict[str, Any]) -> None:
        """The trial's MLflow run, nested under the study's, with the sampled params."""
        mlflow.set_tracking_uri(self.target.uri)
        run = mlflow.start_run(
            run_name=f"{trial.study.study_name}-trial-{trial.number}",
            experiment_id=self.target.experiment_id,
            parent_run_id=self.target.parent_run_id,
            nested=True,
            tags={
                "pml_ops.stage": "tune",
                "pml_ops.model": self.task.model,
                "optuna.study": trial.study.study_name,
                "optuna.trial": str(trial.number),
                "pml_ops.worker": worker_id(),
                LOCK_DIGEST_TAG: lock_digest(),
            },
        )
        trial.set_user_attr(MLFLOW_RUN, run.info.run_id)
        mlflow.log_params(params)

    def _counted_cost(self, trial: optuna.Trial, params: dict[str, Any]) -> float:
        """The sampled configuration's training MFLOP per image, recorded; pruned over the cap."""
        cost = self.task.cost(params)
        trial.set_user_attr(COST, cost)
        mlflow.log_metric(COST, cost)
        if self.max_train_cost is not None and cost > self.max_train_cost:
            raise optuna.TrialPruned(
                f"over the training cost cap before training: {cost:.3g} MFLOP per image > "
                f"{self.max_train_cost:.3g} (tuning.trial.max_train_cost_ratio)"
            )
        return cost

    def _end_interrupted(self, trial: optuna.Trial, error: BaseException) -> None:
        """End a trial stopped by a signal (in one line, as KILLED) or by a bug (FAILED)."""
        signum = stop_signal(error)
        if signum is not None:
            ignore_stops()
            # Optuna logs a failed trial with its traceback; a stop is reported in one line.
            optuna.logging.set_verbosity(optuna.logging.ERROR)
            self._end(trial, "FAIL", "KILLED", FAIL_REASON, f"{STOPPED} {signal.Signals(signum).name}")
        else:
            reason = "".join(traceback.format_exception_only(error)).strip()
            self._end(trial, "FAIL", "FAILED", FAIL_REASON, reason)

    def _end(self, trial: optuna.Trial, state: str, status: str, attr: str, reason: str) -> None:
        """Record why the trial ended and end its run. Under the store's lock: a stop reaches
        every worker at once, and their cleanups writing one SQLite store together would meet
        "database is locked" (which MLflow logs with a traceback before it raises)."""
        trial.set_user_attr(attr, reason)
        if mlflow.active_run() is not None:  # None: stopped before its run started
            with holding(store_lock(self.target.uri), "ending the trial's MLflow run"):
                mlflow.set_tags({"optuna.state": state, f"optuna.{attr}": reason[:5000]})
                mlflow.end_run(status)
