"""Train a VAE on images held on the device, batched by index, with per-epoch checkpoints.

Reproducibility: weights come from `build_model(arch, seed)`; shuffling uses its own CPU
generator and the reparameterisation noise its own device generator, both seeded from `seed` and
saved (as tensors) in the checkpoint with the model and optimiser state. A run interrupted after
any epoch and resumed from its checkpoint therefore ends with the same weights as an
uninterrupted run. With `dequantise`, each batch is dequantised afresh, (k + u) / 256 from a third
seeded generator, also saved, and the validation ELBO is taken on one fixed dequantisation.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from pml_ops.config import TrainingParams
from pml_ops.core.errors import CheckpointError, NonFiniteLossError
from pml_ops.core.io import atomic_path
from pml_ops.core.progress import progress
from pml_ops.density.artifact import unreadable_torch_file
from pml_ops.density.autoencoder import VAE
from pml_ops.density.interface import EpochStats
from pml_ops.density.units import dequantise_unit_images
from pml_ops.runtime.stage import check_stop

EVAL_BATCH = 2048  # default images per forward pass when scoring (bounds memory)


@dataclass
class TrainResult:
    model: VAE
    history: list[EpochStats] = field(default_factory=list)
    resumed_from_epoch: int = 0  # epochs restored from a checkpoint (0: trained from scratch)


EpochCallback = Callable[[EpochStats], None]


@torch.inference_mode()
def mean_elbo(model: VAE, images: torch.Tensor, seed: int, batch: int = EVAL_BATCH) -> float:
    """Mean single-sample ELBO over `images` with noise from a fresh generator seeded `seed`,
    `batch` images per forward pass."""
    was_training = model.training
    model.eval()
    generator = torch.Generator(device=images.device).manual_seed(seed)
    total = 0.0
    for start in range(0, len(images), batch):
        total += model.elbo(images[start : start + batch], generator).sum().item()
    model.train(was_training)
    return total / len(images)


def _save_checkpoint(path: Path, state: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def _load_checkpoint(path: Path, fingerprint: str) -> dict | None:
    """The checkpoint at `path` if it belongs to this run configuration, else None."""
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a corrupt file
        why = unreadable_torch_file(error, "the checkpoint")
        raise CheckpointError(f"{path}: {why}; delete it to start over") from None
    if state.get("fingerprint") != fingerprint:
        print(f"training: {path} belongs to another configuration; starting from scratch")
        return None
    return state


@dataclass(frozen=True)
class _Streams:
    """A run's random streams, each seeded from the run's seed and saved in its checkpoint: the
    batch order (CPU), the reparameterisation noise and the dequantisation noise (on the device)."""

    shuffle: torch.Generator
    noise: torch.Generator
    dequantise: torch.Generator

    @classmethod
    def seeded(cls, seed: int, device: torch.device) -> _Streams:
        return cls(
            shuffle=torch.Generator().manual_seed(seed),
            noise=torch.Generator(device=device).manual_seed(seed + 1),
            dequantise=torch.Generator(device=device).manual_seed(seed + 3),
        )

    def state(self) -> dict[str, torch.Tensor]:
        return {
            "shuffle_rng": self.shuffle.get_state(),
            "noise_rng": self.noise.get_state(),
            "dequantise_rng": self.dequantise.get_state(),
        }

    def restore(self, state: dict) -> None:
        self.shuffle.set_state(state["shuffle_rng"])
        self.noise.set_state(state["noise_rng"].to(self.noise.get_state().device))
        self.dequantise.set_state(state["dequantise_rng"].to(self.dequantise.get_state().device))


def _adam(model: VAE, training: TrainingParams) -> torch.optim.Optimizer:
    return torch.optim.Adam(
        model.parameters(), lr=training.lr, fused=training.fused_adam, foreach=not training.fused_adam
    )


def _resume(
    checkpoint: Path | None, key: str, model: VAE, optimizer: torch.optim.Optimizer, streams: _Streams
) -> list[EpochStats]:
    """Restore the model, optimiser and random streams from `checkpoint` if it belongs to the run
    `key`; the epochs it had finished (none without one)."""
    state = _load_checkpoint(checkpoint, key) if checkpoint is not None else None
    if state is None:
        return []
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    streams.restore(state)
    return [EpochStats(**stats) for stats in state["history"]]


def _train_epoch(
    model: VAE,
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    training: TrainingParams,
    streams: _Streams,
    epoch: int,
    desc: str,
    dequantise: bool,
) -> torch.Tensor:
    """One pass over `images` in shuffled batches of `training.batch_size`, one Adam step each;
    the summed ELBO of its batches (a device tensor: reading it waits for the device)."""
    n = len(images)
    order = torch.randperm(n, generator=streams.shuffle).to(images.device)
    total = torch.zeros((), device=images.device)
    batches = range(0, n, training.batch_size)
    for batch, first in enumerate(progress(batches, desc=desc, leave=False), 1):
        x = images[order[first : first + training.batch_size]]
        if dequantise:
            x = dequantise_unit_images(x, streams.dequantise)
        elbo = model.elbo(x, streams.noise)
        loss = -elbo.mean()
        if not torch.isfinite(loss):
            raise NonFiniteLossError(epoch, batch, loss.item())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += elbo.detach().sum()
    return total


def train_vae(
    model: VAE,
    train_images: torch.Tensor,
    val_images: torch.Tensor,
    training: TrainingParams,
    seed: int,
    checkpoint: Path | None = None,
    fingerprint: str = "",
    on_epoch: EpochCallback | None = None,
    label: str = "train",
    eval_batch: int = EVAL_BATCH,
    dequantise: bool = False,
) -> TrainResult:
    """Adam on the negative mean ELBO for `training.epochs` epochs: torch's multi-tensor (foreach)
    implementation, the same update bit for bit as its CPU default for-loop and faster on these
    small-tensor models, or the fused kernel when `training.fused_adam`.

    `on_epoch` is called after every epoch (after its checkpoint is written) with that epoch's
    `EpochStats`; it may raise (e.g. optuna.TrialPruned) to stop training. With `checkpoint`, an
    existing checkpoint whose `fingerprint` matches is resumed. The validation ELBO runs
    `eval_batch` images per pass. With `dequantise` (a density over [0, 1], e.g. the continuous
    Bernoulli: fitted to grid points k/255 its likelihood grows without bound) the model trains
    on freshly dequantised batches and is validated on dequantised images. A NaN or infinite loss raises
    `NonFiniteLossError` naming the epoch and batch.
    """
    device = train_images.device
    model.to(device).train()
    optimizer = _adam(model, training)
    streams = _Streams.seeded(seed, device)
    if dequantise:
        val_images = dequantise_unit_images(val_images, torch.Generator(device=device).manual_seed(seed + 4))
    key = f"{fingerprint}|{training!r}|seed={seed}|n={len(train_images)}|dequantise={dequantise}"
    result = TrainResult(model, _resume(checkpoint, key, model, optimizer, streams))
    result.resumed_from_epoch = len(result.history)

    n = len(train_images)
    for epoch in range(result.resumed_from_epoch + 1, training.epochs + 1):
        start = time.perf_counter()
        desc = f"{label} epoch {epoch}"
        total = _train_epoch(model, optimizer, train_images, training, streams, epoch, desc, dequantise)
        seconds = time.perf_counter() - start
        stats = EpochStats(
            epoch=epoch,
            train_elbo=total.item() / n,
            val_elbo=mean_elbo(model, val_images, seed + 2, eval_batch),
            seconds=seconds,
            images_per_second=n / seconds,
        )
        result.history.append(stats)
        if checkpoint is not None:
            history = [asdict(s) for s in result.history]
            state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), **streams.state()}
            _save_checkpoint(checkpoint, {"fingerprint": key, **state, "history": history})
        if on_epoch is not None:
            on_epoch(stats)
        check_stop()  # a stop whose exception was lost ends training here, after the checkpoint
    model.eval()
    return result
