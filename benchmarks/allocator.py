"""Training and IWAE throughput with glibc's default malloc against `retain_freed_memory()`
(pml_ops/core/resources.py: freed memory kept for reuse, not returned to the kernel).

malloc settings are per process, so each measurement is a child process; the two variants
alternate `--rounds` times and the medians are compared. A child trains the VAE and the CVAE
(params.yaml architectures and training settings) for one epoch on the first `--train-images`
training images through `train_vae` (the stage's loop) and times `VaeModel.iwae` (the evaluate
stage's path, K = evaluate.iwae_samples) on `--iwae-images` test images, at `--threads` torch
threads. Run from the project root after `dvc repro prepare`:

    python benchmarks/allocator.py --threads 1 --rounds 3 --out benchmarks/results/allocator.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

VARIANTS = ("glibc_default", "retain_freed_memory")
MODELS = ("vae", "cvae")


def child(variant: str, threads: int, train_images: int, iwae_images: int) -> dict:
    from pml_ops.core.resources import peak_rss_mib, retain_freed_memory

    applied = retain_freed_memory() if variant == "retain_freed_memory" else False
    import numpy as np
    import torch

    from pml_ops.config import load_params
    from pml_ops.data.mnist import load_mnist
    from pml_ops.density.architectures import build_model
    from pml_ops.density.data import image_tensor, resolve_device, train_validation_split
    from pml_ops.density.models.vae import VaeModel
    from pml_ops.density.training import train_vae

    params = load_params()
    device = resolve_device("cpu", threads)
    data = load_mnist(params.data.path)
    train_idx, val_idx = train_validation_split(len(data.x_train), params.density.validation_fraction, 0)
    train = image_tensor(data.x_train[train_idx][:train_images], device)
    val = image_tensor(data.x_train[val_idx][:256], device)
    test = data.x_test[:iwae_images].reshape(-1, 784).astype(np.float32) / 255.0
    out: dict = {"variant": variant, "applied": applied, "threads": torch.get_num_threads()}
    for name in MODELS:
        section = getattr(params, name)
        one_epoch = section.training.model_copy(update={"epochs": 1})
        result = train_vae(build_model(section.architecture, 0), train, val, one_epoch, seed=0)
        model = VaeModel(
            name, name, section.architecture, section.training, 0, device, params.evaluate.memory_budget_mib
        )
        model.module_ = build_model(section.architecture, 0).to(device).eval()
        model.iwae(test[:1], params.evaluate.iwae_samples)  # warm-up
        began = time.perf_counter()
        model.iwae(test, params.evaluate.iwae_samples)
        out[name] = {
            "train_images_per_s": result.history[0].images_per_second,
            "iwae_s": time.perf_counter() - began,
        }
    out["peak_rss_mib"] = peak_rss_mib()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--train-images", type=int, default=12800)
    parser.add_argument("--iwae-images", type=int, default=20)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.threads, args.train_images, args.iwae_images)))
        return

    runs: dict[str, list[dict]] = {variant: [] for variant in VARIANTS}
    load_before = os.getloadavg()
    for round_ in range(args.rounds):
        for variant in VARIANTS if round_ % 2 == 0 else reversed(VARIANTS):
            command = [sys.executable, __file__, "--child", variant, "--threads", str(args.threads)]
            command += ["--train-images", str(args.train_images), "--iwae-images", str(args.iwae_images)]
            line = subprocess.run(command, check=True, capture_output=True, text=True).stdout.splitlines()[-1]
            runs[variant].append(json.loads(line))
            print(f"round {round_} {variant}: {line}", flush=True)
    summary: dict = {
        "threads": args.threads,
        "train_images": args.train_images,
        "iwae_images": args.iwae_images,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "runs": runs,
    }
    for name in MODELS:
        medians = {
            variant: {
                key: statistics.median(run[name][key] for run in runs[variant])
                for key in ("train_images_per_s", "iwae_s")
            }
            for variant in VARIANTS
        }
        default, retained = medians["glibc_default"], medians["retain_freed_memory"]
        summary[name] = {
            **medians,
            "train_speedup": retained["train_images_per_s"] / default["train_images_per_s"],
            "iwae_speedup": default["iwae_s"] / retained["iwae_s"],
        }
        print(f"{name}: {json.dumps(summary[name])}")
    if args.out:
        args.out.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
