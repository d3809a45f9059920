"""A cheap, deterministic stand-in for model training, to test the tuning machinery fast.

It samples the real CVAE search space and scores a configuration by a smooth function of its
learning rate that improves with every epoch, with a cost that grows with channels and kernel
area (4x for stride 1), so the two-objective study, pruning, failures, storage and MLflow
nesting are exercised without training a network.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import optuna

from pml_ops.config import CvaeSpace
from pml_ops.core.errors import PmlOpsError
from pml_ops.tuning.space import suggest
from pml_ops.tuning.task import EpochCallback, Evaluate


class ImpossibleGeometry(PmlOpsError):
    """Stands in for the model builder's error on an impossible kernel/stride/padding."""


@dataclass(frozen=True)
class SyntheticTask:
    space: CvaeSpace
    epochs: int
    model: str = "cvae"
    failures: tuple[type[Exception], ...] = (ImpossibleGeometry,)

    def sample(self, trial: optuna.Trial) -> dict[str, Any]:
        params = {
            name: suggest(trial, name, getattr(self.space, name))
            for name in ("kernel_size", "stride", "conv_layers", "hidden", "lr")
        }
        for layer in range(1, params["conv_layers"] + 1):
            params[f"channels_{layer}"] = suggest(trial, f"channels_{layer}", self.space.channels)
        return params

    def prepare(self) -> Evaluate:
        return self.evaluate

    def evaluate(self, params: dict[str, Any], on_epoch: EpochCallback) -> float:
        if params["kernel_size"] == 7 and params["stride"] == 2 and params["conv_layers"] == 3:
            raise ImpossibleGeometry("kernel 7, stride 2: a 3-layer stack shrinks 28x28 below 1x1")
        value = math.nan
        for epoch in range(1, self.epochs + 1):
            value = -100.0 - 10.0 * (math.log10(params["lr"]) + 2.5) ** 2 + epoch
            on_epoch(epoch, value)
        return value

    def best_section(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"architecture": dict(params)}

    def cost(self, params: dict[str, Any] | None) -> float:
        """MFLOP per image: 1.0 for the study's CVAE (16 + 32 channels, kernel 3, stride 2)."""
        if params is None:
            return 1.0
        channels = sum(params[f"channels_{layer}"] for layer in range(1, params["conv_layers"] + 1))
        stride = 4.0 if params["stride"] == 1 else 1.0
        return stride * channels * params["kernel_size"] ** 2 / (48 * 9)

    def reference_seconds_per_epoch(self) -> float:
        return 1.0
