"""Benchmark: the tuned CVAE (params_tuned.yaml) against the default CVAE (params.yaml), trained
identically on the training part of the train/validation split and scored on the test set.

    python -m benchmarks.tuned_vs_default --epochs 5 --out benchmarks/results/tuned_vs_default.json

Both models get the same epochs, batch size, seeds and data; only architecture and learning rate
differ. The test set is used here, after tuning, and never by the study.
"""

from __future__ import annotations

import argparse
import time

from pml_ops.config import load_params
from pml_ops.core.io import write_json
from pml_ops.data.mnist import load_mnist
from pml_ops.density.architectures import build_model
from pml_ops.density.data import image_tensor, resolve_device, train_validation_split
from pml_ops.density.families import load_tuned
from pml_ops.density.training import mean_elbo, train_vae


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="cvae", choices=["cvae", "vae"])
    parser.add_argument("--epochs", type=int, help="default: the model's training.epochs")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    params = load_params()
    density = params.density
    device = resolve_device(density.device, density.cpu_threads)
    mnist = load_mnist(params.data.path)
    train_idx, val_idx = train_validation_split(len(mnist.x_train), density.validation_fraction, density.seed)
    train = image_tensor(mnist.x_train[train_idx], device)
    val = image_tensor(mnist.x_train[val_idx], device)
    test = image_tensor(mnist.x_test, device)

    results = {}
    for name, config in (
        ("default", getattr(params, args.model)),
        (
            "tuned",
            load_tuned(params.tuning.best_params_file, f"{args.model}_tuned", getattr(params, args.model)),
        ),
    ):
        training = config.training
        if args.epochs is not None:
            training = training.model_copy(update={"epochs": args.epochs})
        model = build_model(config.architecture, seed=density.seed)
        started = time.perf_counter()
        result = train_vae(model, train, val, training, seed=density.seed, label=name)
        seconds = time.perf_counter() - started
        results[name] = {
            "architecture": config.architecture.model_dump(),
            "training": training.model_dump(),
            "parameters": sum(p.numel() for p in model.parameters()),
            "train_seconds": round(seconds, 1),
            "val_elbo": result.history[-1].val_elbo,
            "test_elbo": mean_elbo(model, test, density.seed + 3),
        }
        print(f"{name}: test ELBO {results[name]['test_elbo']:.3f} ({seconds:.0f} s)", flush=True)
    results["tuned_minus_default_test_elbo"] = results["tuned"]["test_elbo"] - results["default"]["test_elbo"]
    write_json(args.out, results)


if __name__ == "__main__":
    main()
