"""One full training epoch (train_vae, params.yaml's VAE and CVAE) with torch's for-loop Adam and
with the fused kernel (`training.fused_adam`), alternating `--rounds` times in one process: epoch
time, validation ELBO, and how far the weights end apart (`torch.testing.assert_close`). Run from
the project root after `dvc repro prepare`:

    python benchmarks/fused_adam_epoch.py --threads 1
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pml_ops.config import load_params
from pml_ops.data.mnist import load_mnist
from pml_ops.density.architectures import build_model
from pml_ops.density.data import image_tensor, train_validation_split
from pml_ops.density.training import train_vae


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--models", nargs="+", default=["vae", "cvae"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    params = load_params()
    data = load_mnist(params.data.path)
    train_idx, val_idx = train_validation_split(len(data.x_train), params.density.validation_fraction, 0)
    cpu = torch.device("cpu")
    train, val = image_tensor(data.x_train[train_idx], cpu), image_tensor(data.x_train[val_idx], cpu)
    print(f"load {os.getloadavg()}, threads {torch.get_num_threads()}")
    for name in args.models:
        section = getattr(params, name)
        weights = {}
        for round_ in range(args.rounds):
            for fused in (False, True):
                training = section.training.model_copy(update={"epochs": 1, "fused_adam": fused})
                result = train_vae(build_model(section.architecture, 0), train, val, training, seed=0)
                stats = result.history[0]
                weights[fused] = [p.detach() for p in result.model.parameters()]
                print(
                    f"{name} round {round_} fused_adam={fused}: {stats.seconds:.1f} s, "
                    f"{stats.images_per_second:.0f} img/s, validation ELBO {stats.val_elbo:.6f}",
                    flush=True,
                )
        apart = max((p - q).abs().max().item() for p, q in zip(weights[False], weights[True], strict=True))
        try:
            torch.testing.assert_close(weights[True], weights[False])
            verdict = "within float32 tolerance"
        except AssertionError:
            verdict = "NOT within float32 tolerance"
        print(f"{name}: weights after one epoch at most {apart:.3g} apart: {verdict}")
    print(f"load {os.getloadavg()}")


if __name__ == "__main__":
    main()
