"""Training throughput (images/s) of the VAE and CVAE: pml-ops's index-batched loop on a device
tensor vs a reference loop using torch DataLoader with per-item tensor conversion; and the FLOP
efficiency of the training step and of the IWAE evaluation against this machine's sgemm.

Same data, architecture (params.yaml), optimiser, loss, batch size and thread count; the two loops
alternate `--rounds` times in one process and the median of each is reported. FLOPs are counted
by torch's FlopCounterMode (matmuls and convolutions, forward and backward); the sgemm figure is
a 2048 x 2048 float32 matmul at the same thread count, best of 5, measured before and after
each model's runs (their mean is the reference: on a shared machine the load moves). The IWAE is timed on
`--iwae-images` test images with K = evaluate.iwae_samples through `VaeModel.iwae` (the stage's
code path, its memory budget included); for the CVAE, rounds alternate between its decoder's
`FastConvTranspose2d` layers and plain `nn.ConvTranspose2d`. Run from the project root after
`dvc repro prepare`:

    python benchmarks/density_throughput.py --out benchmarks/results/throughput.json
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pml_ops.config import load_params
from pml_ops.core.io import write_json
from pml_ops.data.mnist import load_mnist
from pml_ops.density.architectures import build_model
from pml_ops.density.data import image_tensor, resolve_device, train_validation_split
from pml_ops.density.models.vae import VaeModel
from pml_ops.density.training import train_vae


class PerItemMnist(Dataset):
    """The usual Dataset: one uint8 image at a time, converted to a float tensor in __getitem__."""

    def __init__(self, images: np.ndarray) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> torch.Tensor:
        return torch.from_numpy(self.images[index]).float().div(255.0).unsqueeze(0)


def reference_epoch(model, images: np.ndarray, batch_size: int, lr: float, device, seed: int) -> float:
    """One epoch with DataLoader (shuffle, per-item conversion, default collate); images/s."""
    torch.manual_seed(seed)
    model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    loader = DataLoader(PerItemMnist(images), batch_size=batch_size, shuffle=True, num_workers=0)
    start = time.perf_counter()
    for x in loader:
        loss = -model.elbo(x.to(device)).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return len(images) / (time.perf_counter() - start)


def sgemm_flops_per_s(size: int = 2048, repeats: int = 5) -> float:
    """float32 matmul throughput at the current thread count (best of `repeats`)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best = min(_seconds(lambda: a @ b) for _ in range(repeats))
    return 2 * size**3 / best


def _seconds(work) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def iwae_seconds(models: list[VaeModel], images: np.ndarray, k: int, rounds: int) -> list[float]:
    """Wall seconds of each model's `iwae` on `images` with K = k, best of `rounds` that
    alternate between the models."""
    times: list[list[float]] = [[] for _ in models]
    for _ in range(rounds):
        for model, model_times in zip(models, times, strict=True):
            model_times.append(_seconds(functools.partial(model.iwae, images, k)))
    return [min(model_times) for model_times in times]


def training_step_flops(model, batch: torch.Tensor) -> int:
    """FLOPs of one training step (forward and backward of the negative mean ELBO)."""
    with FlopCounterMode(display=False) as counter:
        (-model.elbo(batch).mean()).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def iwae_flops_per_image(model, k: int) -> int:
    """FLOPs of the IWAE with K = k for one image (encoder once, K decoder passes)."""
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model.iwae(torch.rand(1, 1, 28, 28), k)
    return counter.get_total_flops()


def plain_conv_transpose(module) -> None:
    """Switch the CVAE decoder's `FastConvTranspose2d` layers to plain `nn.ConvTranspose2d`."""
    for layer in module.modules():
        if isinstance(layer, nn.ConvTranspose2d):
            layer.__class__ = nn.ConvTranspose2d


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--iwae-images", type=int, default=20)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: density.cpu_threads)"
    )
    parser.add_argument("--train-images", type=int, default=None, help="first N training images per epoch")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    params = load_params()
    threads = params.density.cpu_threads if args.threads is None else args.threads
    device = resolve_device(params.density.device, threads)
    data = load_mnist(params.data.path)
    train_idx, val_idx = train_validation_split(len(data.x_train), params.density.validation_fraction, 0)
    train_np = data.x_train[train_idx][: args.train_images]
    train_t = image_tensor(train_np, device)
    val_t = image_tensor(data.x_train[val_idx][:256], device)
    report: dict = {
        "device": str(device),
        "threads": torch.get_num_threads(),
        "images": len(train_np),
        "load_average_1min": os.getloadavg()[0],
    }
    test = data.x_test[: args.iwae_images].reshape(-1, 784).astype(np.float32) / 255.0
    for name in ("vae", "cvae"):
        section = getattr(params, name)
        one_epoch = section.training.model_copy(update={"epochs": 1})
        ours, reference = [], []
        sgemm_before = sgemm_flops_per_s()  # measured around each model's runs: the machine's load moves
        for round_ in range(args.rounds):
            result = train_vae(
                build_model(section.architecture, round_), train_t, val_t, one_epoch, seed=round_
            )
            ours.append(result.history[0].images_per_second)
            model = build_model(section.architecture, round_)
            reference.append(
                reference_epoch(model, train_np, one_epoch.batch_size, one_epoch.lr, device, round_)
            )
            print(f"{name} round {round_}: ours {ours[-1]:.0f} img/s, reference {reference[-1]:.0f} img/s")
        step_flops = training_step_flops(
            build_model(section.architecture, 0), train_t[: one_epoch.batch_size]
        )
        train_flop_rate = step_flops / one_epoch.batch_size * statistics.median(ours)
        k = params.evaluate.iwae_samples
        models = []
        for _ in range(2 if name == "cvae" else 1):
            vae_model = VaeModel(
                name,
                name,
                section.architecture,
                section.training,
                0,
                device,
                params.evaluate.memory_budget_mib,
            )
            vae_model.module_ = build_model(section.architecture, 0).to(device).eval()
            models.append(vae_model)
        if len(models) == 2:
            plain_conv_transpose(models[1].module)
        iwae_flops = iwae_flops_per_image(models[0].module, k) * len(test)
        iwae_s, *plain = iwae_seconds(models, test, k, args.rounds)
        sgemm_after = sgemm_flops_per_s()
        sgemm = (sgemm_before + sgemm_after) / 2
        report[name] = {
            "sgemm_gflop_per_s_before_after": [sgemm_before / 1e9, sgemm_after / 1e9],
            "ours_images_per_s": statistics.median(ours),
            "reference_images_per_s": statistics.median(reference),
            "speedup": statistics.median(ours) / statistics.median(reference),
            "rounds": {"ours": ours, "reference": reference},
            "train_step_flops_per_image": step_flops / one_epoch.batch_size,
            "train_gflop_per_s": train_flop_rate / 1e9,
            "train_fraction_of_sgemm": train_flop_rate / sgemm,
            "iwae_images": len(test),
            "iwae_samples": k,
            "iwae_seconds": iwae_s,
            "iwae_gflop_per_s": iwae_flops / iwae_s / 1e9,
            "iwae_fraction_of_sgemm": iwae_flops / iwae_s / sgemm,
        }
        if plain:
            report[name]["iwae_seconds_plain_conv_transpose"] = plain[0]
            report[name]["iwae_speedup_fast_conv_transpose"] = plain[0] / iwae_s
        print(f"{name}: {json.dumps({key: v for key, v in report[name].items() if key != 'rounds'})}")
    print(json.dumps(report, indent=2))
    if args.out is not None:
        write_json(args.out, report)


if __name__ == "__main__":
    main()
