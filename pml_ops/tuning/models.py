"""The real tuning tasks: VAE and CVAE architectures trained on held-out MNIST training images.

Each trial trains on the first `tuning.trial.train_size` images of the training part of the
density models' train/validation split and is scored by the mean ELBO on the first
`tuning.trial.validation_size` images of its validation part: the test set is never touched.
Batch size and latent dimension are the model's own (`vae`/`cvae` in params.yaml); the sampled
architecture and learning rate replace the rest.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna

from pml_ops.config import (
    ConvVaeArchitecture,
    CvaeSpace,
    MlpVaeArchitecture,
    Params,
    TrainingParams,
    VaeSpace,
)
from pml_ops.core.errors import ArchitectureError, DataError, NonFiniteLossError
from pml_ops.data.mnist import load_mnist
from pml_ops.density.architectures import build_model
from pml_ops.density.data import image_tensor, resolve_device, train_validation_split
from pml_ops.density.interface import EpochStats
from pml_ops.density.training import train_vae
from pml_ops.tuning.cost import training_mflop_per_image
from pml_ops.tuning.space import suggest
from pml_ops.tuning.task import EpochCallback, Evaluate

MODELS = ("cvae", "vae")


def cvae_architecture(params: dict[str, Any], latent_dim: int) -> ConvVaeArchitecture:
    """Sampled CVAE params -> the architecture config the density builder takes."""
    kernel, stride = params["kernel_size"], params["stride"]
    return ConvVaeArchitecture(
        latent_dim=latent_dim,
        channels=[params[f"channels_{layer}"] for layer in range(1, params["conv_layers"] + 1)],
        kernel_size=kernel,
        stride=stride,
        padding=(kernel - 1) // 2,
        output_padding=stride - 1,
        hidden=[params["hidden"]] if params["hidden"] > 0 else [],
    )


def vae_architecture(params: dict[str, Any], latent_dim: int) -> MlpVaeArchitecture:
    return MlpVaeArchitecture(latent_dim=latent_dim, hidden=[params["hidden"]] * params["depth"])


@dataclass(frozen=True)
class DensityTask:
    """Tune one density model's architecture (`model` is 'cvae' or 'vae')."""

    model: str
    params: Params
    failures: tuple[type[Exception], ...] = (ArchitectureError, NonFiniteLossError)

    @property
    def latent_dim(self) -> int:
        return getattr(self.params, self.model).architecture.latent_dim

    def sample(self, trial: optuna.Trial) -> dict[str, Any]:
        space = getattr(self.params.tuning, self.model).space
        if isinstance(space, CvaeSpace):
            names = ("kernel_size", "stride", "conv_layers", "hidden", "lr")
            sampled = {name: suggest(trial, name, getattr(space, name)) for name in names}
            for layer in range(1, sampled["conv_layers"] + 1):
                sampled[f"channels_{layer}"] = suggest(trial, f"channels_{layer}", space.channels)
            return sampled
        assert isinstance(space, VaeSpace)
        return {name: suggest(trial, name, getattr(space, name)) for name in ("hidden", "depth", "lr")}

    def architecture(self, sampled: dict[str, Any]) -> ConvVaeArchitecture | MlpVaeArchitecture:
        build = cvae_architecture if self.model == "cvae" else vae_architecture
        return build(sampled, self.latent_dim)

    def prepare(self) -> Evaluate:
        train = self._trainer()

        def evaluate(sampled: dict[str, Any], on_epoch: EpochCallback) -> float:
            return train(self.architecture(sampled), sampled["lr"], on_epoch)

        return evaluate

    def cost(self, sampled: dict[str, Any] | None) -> float:
        """Training MFLOP per image of the sampled architecture (None: the model's own)."""
        own = getattr(self.params, self.model).architecture
        architecture = own if sampled is None else self.architecture(sampled)
        return training_mflop_per_image(build_model(architecture, seed=self.params.tuning.trial.seed))

    def reference_seconds_per_epoch(self) -> float:
        """Train the model's params.yaml architecture with the trial settings; seconds per epoch."""
        own = getattr(self.params, self.model)
        train = self._trainer()
        started = time.perf_counter()
        train(own.architecture, own.training.lr, lambda epoch, value: None)
        return (time.perf_counter() - started) / self.params.tuning.trial.epochs

    def _trainer(self) -> Callable[[ConvVaeArchitecture | MlpVaeArchitecture, float, EpochCallback], float]:
        """Load the trial data once; return train(architecture, lr, on_epoch) -> final val ELBO."""
        density, trial = self.params.density, self.params.tuning.trial
        device = resolve_device(density.device, density.cpu_threads)
        images = load_mnist(self.params.data.path, self.params.data.dataset).x_train
        train_idx, val_idx = train_validation_split(len(images), density.validation_fraction, density.seed)
        for name, wanted, available in (
            ("train_size", trial.train_size, len(train_idx)),
            ("validation_size", trial.validation_size, len(val_idx)),
        ):
            if wanted > available:
                raise DataError(f"tuning.trial.{name}: {wanted} images wanted, the split holds {available}")
        train_images = image_tensor(images[train_idx[: trial.train_size]], device)
        val_images = image_tensor(images[val_idx[: trial.validation_size]], device)
        batch_size = getattr(self.params, self.model).training.batch_size

        def train(
            architecture: ConvVaeArchitecture | MlpVaeArchitecture, lr: float, on_epoch: EpochCallback
        ) -> float:
            started = time.monotonic()

            def after_epoch(stats: EpochStats) -> None:
                on_epoch(stats.epoch, stats.val_elbo)
                seconds = time.monotonic() - started
                if (
                    trial.max_seconds is not None
                    and seconds > trial.max_seconds
                    and stats.epoch < trial.epochs
                ):
                    raise optuna.TrialPruned(
                        f"over the per-trial time budget: {seconds:.0f} s > "
                        f"tuning.trial.max_seconds={trial.max_seconds:g} after epoch {stats.epoch}"
                    )

            model = build_model(architecture, seed=trial.seed)
            training = TrainingParams(epochs=trial.epochs, batch_size=batch_size, lr=lr)
            result = train_vae(
                model,
                train_images,
                val_images,
                training,
                seed=trial.seed,
                on_epoch=after_epoch,
                label=f"{self.model} trial",
            )
            return result.history[-1].val_elbo

        return train

    def best_section(self, sampled: dict[str, Any]) -> dict[str, Any]:
        return {"architecture": self.architecture(sampled).model_dump(), "lr": sampled["lr"]}
