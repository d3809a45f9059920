"""DVC stage `train@<model>`: fit one density model of params.yaml's `models` list, write it,
its metrics and (iterative models) its per-epoch curves.

python -m pipelines.train_density MODEL
"""

from __future__ import annotations

import time

import numpy as np

from pml_ops.config import Params, flatten
from pml_ops.density import registry
from pml_ops.density.data import density_split
from pml_ops.density.interface import FitCallbacks
from pml_ops.density.stages import numeric, run_model_stage
from pml_ops.density.training import EpochStats
from pml_ops.io import write_json
from pml_ops.resources import resource_metrics
from pml_ops.run_group import stage_run


def train(params: Params, name: str) -> None:
    import mlflow

    start = time.perf_counter()
    split = density_split(params)
    model, paths = registry.create(params, name), registry.paths(params, name)
    with stage_run(params, f"train {name}", {"stage": f"train_{name}", "model": name}):
        hyper = flatten(name, model.hyperparameters())
        mlflow.log_params({**hyper, "seed": params.density.seed, "train_images": len(split.x_train)})

        def log_epoch(stats: EpochStats) -> None:
            mlflow.log_metrics({"train_elbo": stats.train_elbo, "val_elbo": stats.val_elbo}, step=stats.epoch)
            print(
                f"{name}: epoch {stats.epoch} train ELBO {stats.train_elbo:.2f} val ELBO {stats.val_elbo:.2f}"
            )

        model.fit(split, FitCallbacks(on_epoch=log_epoch, checkpoint=paths.checkpoint))
        mlflow.log_params(model.run_params())
        write_json(paths.history, model.history_)
        model.save(paths.artifact)
        model.log_mlflow_model(paths.artifact, (split.x_val[:2, None] / 255.0).astype(np.float32))
        metrics = {
            **model.train_metrics_,
            "train_images": len(split.x_train),
            "validation_images": len(split.x_val),
            **resource_metrics(start),
        }
        mlflow.log_metrics(numeric(metrics, skip={"train_elbo", "val_elbo"}))  # per epoch already
    write_json(paths.train_metrics, metrics)
    print(f"train {name}: wrote {paths.artifact} in {metrics['wall_time_s']:.1f} s")


if __name__ == "__main__":
    run_model_stage("pipelines.train_density", train)
