"""DVC stage `train@<model>`: fit one density model of params.yaml's `models` list, write it,
its metrics and (iterative models) its per-epoch curves.

python -m pipelines.train_density MODEL
"""

from __future__ import annotations

import time

import mlflow

from pml_ops.config import Params
from pml_ops.core.io import write_json
from pml_ops.core.metrics_files import write_metrics
from pml_ops.core.resources import resource_metrics
from pml_ops.density import families
from pml_ops.density.data import density_split, to_unit_float
from pml_ops.density.interface import EpochStats, FitCallbacks
from pml_ops.density.model_stage import numeric, run_model_stage
from pml_ops.density.pyfunc import log_and_record
from pml_ops.tracking.datasets import log_images
from pml_ops.tracking.params import flatten
from pml_ops.tracking.run_group import tracked_stage


def train(params: Params, name: str) -> None:
    start = time.perf_counter()
    split = density_split(params)
    model, paths = families.create(params, name), families.paths(params, name)
    tags = {"stage": f"train_{name}", "model": name}
    with tracked_stage(params, f"train {name}", tags, system_metrics=True):
        hyper = flatten(name, model.hyperparameters())
        mlflow.log_params({**hyper, "seed": params.density.seed, "train_images": len(split.x_train)})
        log_images(split.x_train, "train", params.data.path, "training")
        log_images(split.x_val, "validation", params.data.path, "validation")

        def log_epoch(stats: EpochStats) -> None:
            mlflow.log_metrics({"train_elbo": stats.train_elbo, "val_elbo": stats.val_elbo}, step=stats.epoch)
            print(
                f"{name}: epoch {stats.epoch} train ELBO {stats.train_elbo:.2f} val ELBO {stats.val_elbo:.2f}"
            )

        model.fit(split, FitCallbacks(on_epoch=log_epoch, checkpoint=paths.checkpoint))
        mlflow.log_params(model.run_params())
        write_json(paths.history, model.history_)
        model.save(paths.artifact)
        model_id = log_and_record(
            model, paths.artifact, to_unit_float(split.x_val[:2]), params.density.seed, tags
        )
        metrics = {
            **model.train_metrics_,
            "train_images": len(split.x_train),
            "validation_images": len(split.x_val),
            **resource_metrics(start),
        }
        # per-epoch curves are logged already; the rest also describes the logged model
        mlflow.log_metrics(numeric(metrics, skip={"train_elbo", "val_elbo"}), model_id=model_id)
    write_metrics(paths.train_metrics, metrics)
    print(f"train {name}: wrote {paths.artifact} in {metrics['wall_time_s']:.1f} s")


if __name__ == "__main__":
    run_model_stage("pipelines.train_density", train)
