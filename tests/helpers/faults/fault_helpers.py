"""Stand-ins the fault tests run in subprocesses: a tuning task whose trials take a while (so a
worker can be killed mid-trial), a driver that tunes it, and a stage that waits to be stopped."""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import yaml

from pml_ops.tuning.task import EpochCallback, Evaluate


@dataclass(frozen=True)
class SlowTask:
    """One float parameter; every epoch sleeps, then reports a smooth score of it."""

    epochs: int = 3
    seconds_per_epoch: float = 0.7
    model: str = "cvae"
    failures: tuple[type[Exception], ...] = ()

    def sample(self, trial: optuna.Trial) -> dict[str, Any]:
        return {"lr": trial.suggest_float("lr", 1e-4, 1e-1, log=True)}

    def prepare(self) -> Evaluate:
        return self.evaluate

    def evaluate(self, params: dict[str, Any], on_epoch: EpochCallback) -> float:
        value = math.nan
        for epoch in range(1, self.epochs + 1):
            time.sleep(self.seconds_per_epoch)
            value = -100.0 - 10.0 * (math.log10(params["lr"]) + 2.5) ** 2 + epoch
            on_epoch(epoch, value)
        return value

    def best_section(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"architecture": {}, "lr": params["lr"]}

    def cost(self, params: dict[str, Any] | None) -> float:
        return 1.0  # every trial costs what the reference does: all within the budget

    def reference_seconds_per_epoch(self) -> float:
        return max(self.seconds_per_epoch, 0.1)


@dataclass(frozen=True)
class DyingTask(SlowTask):
    """Every trial kills its own worker process (as the out-of-memory killer would)."""

    def evaluate(self, params: dict[str, Any], on_epoch: EpochCallback) -> float:
        on_epoch(1, -100.0)
        os.kill(os.getpid(), 9)
        raise AssertionError("unreachable")


def tune_slow_task(params_file: str, project_dir: str) -> None:
    """`python -m tests.helpers.faults.fault_helpers tune PARAMS DIR`: tune SlowTask like `pml-ops tune`."""
    from pml_ops.config import parse_params
    from pml_ops.tuning.command import Overrides, tune

    params = parse_params(yaml.safe_load(Path(params_file).read_text()))
    summary = tune(params, SlowTask(), Overrides(), project_dir=Path(project_dir))
    print(json.dumps(summary["states"]), flush=True)


def cli_with_slow_task(*argv: str) -> None:
    """`python -m tests.helpers.faults.fault_helpers cli ARGS`: the real `pml-ops` command line, with
    SlowTask in place of the density models (no torch, no MNIST)."""
    import pml_ops.tuning.models
    from pml_ops.cli.main import main

    pml_ops.tuning.models.DensityTask = lambda model, params: SlowTask(epochs=50)  # type: ignore[assignment,misc]
    sys.exit(main(list(argv)))


def sleeping_stage(params_file: str, output: str, seconds: str) -> None:
    """`python -m tests.helpers.faults.fault_helpers stage PARAMS OUTPUT SECONDS`: a stage that starts its
    MLflow run, writes a checkpoint, prints its pid and run id, works for SECONDS and only then
    writes OUTPUT."""
    from pml_ops.config import Params
    from pml_ops.runtime.stage import run_stage
    from pml_ops.tracking.run_group import tracked_stage

    def stage(params: Params) -> None:
        with tracked_stage(params, "sleeper", {"stage": "sleeper"}) as run:
            checkpoint = Path(params.density.checkpoint_dir) / "sleeper.pt"
            checkpoint.parent.mkdir(parents=True, exist_ok=True)
            checkpoint.write_text("epoch 1")
            print(f"pid {os.getpid()} run {run.info.run_id}", flush=True)
            deadline = time.monotonic() + float(seconds)
            while time.monotonic() < deadline:
                time.sleep(0.05)
        Path(output).write_text("finished")

    run_stage(stage, params_file)


if __name__ == "__main__":
    command, *arguments = sys.argv[1:]
    {"tune": tune_slow_task, "stage": sleeping_stage, "cli": cli_with_slow_task}[command](*arguments)
