"""Training throughput (images/s) of the VAE and CVAE: pml-ops's index-batched loop on a device
tensor vs a reference loop using torch DataLoader with per-item tensor conversion.

Same data, architecture (params.yaml), optimiser, loss, batch size and thread count; the two loops
alternate `--rounds` times in one process and the median of each is reported. Run from the
project root after `dvc repro prepare`:

    python benchmarks/density_throughput.py --out benchmarks/results/throughput.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pml_ops.config import load_params
from pml_ops.data.mnist import load_mnist
from pml_ops.density.architectures import build_model
from pml_ops.density.data import image_tensor, resolve_device, train_validation_split
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    params = load_params()
    device = resolve_device(params.density.device, params.density.cpu_threads)
    data = load_mnist(params.data.path)
    train_idx, val_idx = train_validation_split(len(data.x_train), params.density.validation_fraction, 0)
    train_np = data.x_train[train_idx]
    train_t = image_tensor(train_np, device)
    val_t = image_tensor(data.x_train[val_idx][:256], device)
    report: dict = {"device": str(device), "threads": torch.get_num_threads(), "images": len(train_np)}
    for name in ("vae", "cvae"):
        section = getattr(params, name)
        one_epoch = section.training.model_copy(update={"epochs": 1})
        ours, reference = [], []
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
        report[name] = {
            "ours_images_per_s": statistics.median(ours),
            "reference_images_per_s": statistics.median(reference),
            "speedup": statistics.median(ours) / statistics.median(reference),
            "rounds": {"ours": ours, "reference": reference},
        }
    print(json.dumps(report, indent=2))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
