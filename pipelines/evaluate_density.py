"""DVC stage `evaluate@<model>`: test metrics and figures for one trained density model.

python -m pipelines.evaluate_density MODEL
"""

from __future__ import annotations

import time

import mlflow

from pml_ops.config import Params
from pml_ops.core.metrics_files import split_metrics, write_split
from pml_ops.core.resources import resource_metrics
from pml_ops.data.mnist import dataset
from pml_ops.density import families
from pml_ops.density.data import density_split, to_unit_float
from pml_ops.density.evaluation import evaluate_model
from pml_ops.density.interface import FigureInputs
from pml_ops.density.model_stage import numeric, run_model_stage
from pml_ops.density.pyfunc import recorded_or_logged
from pml_ops.density.units import dequantise
from pml_ops.tracking.datasets import log_images
from pml_ops.tracking.model_registry import comparability, register, version_tags
from pml_ops.tracking.params import flatten
from pml_ops.tracking.run_group import tracked_stage


def evaluate(params: Params, name: str) -> None:
    start = time.perf_counter()
    split = density_split(params)
    model, paths = families.load(params, name), families.paths(params, name)
    x_train, x_test = to_unit_float(split.x_train), to_unit_float(split.x_test)
    seed = params.density.seed
    tags = {"stage": f"evaluate_{name}", "model": name}
    with tracked_stage(params, f"evaluate {name}", tags) as run:
        mlflow.log_params(flatten("evaluate", params.evaluate.model_dump()))
        test_set = log_images(split.x_test, "test", params.data.path, "test")
        x_dequantised = dequantise(split.x_test, params.evaluate.dequantisation_seed)
        metrics = evaluate_model(
            model, x_train, split.y_train, x_test, split.y_test, params.evaluate, seed, x_dequantised
        )
        classes = dataset(params.data.dataset).class_names
        inputs = FigureInputs(x_test, split.y_test, params.evaluate, paths.figures, seed, classes)
        for path in model.figures(inputs):
            mlflow.log_artifact(str(path), artifact_path="figures")
        metrics.update(resource_metrics(start))
        model_id = recorded_or_logged(model, paths.artifact, x_test[:2], seed, tags)
        mlflow.log_metrics(numeric(metrics), model_id=model_id, dataset=test_set)
        mlflow.set_tags({key: str(value) for key, value in split_metrics(metrics)[1].items()})
        settings = {"hyperparameters": model.hyperparameters(), "density": params.density.model_dump()}
        provenance = version_tags(settings, run.info.run_id)
        key = comparability(params.data.dataset, params.data.path, metrics, params.tracking.profile)
        registration = register(f"models:/{model_id}", name, metrics["test_score"], provenance, key)
        mlflow.set_tags(
            {
                "registered_model": registration.name,
                "registered_version": registration.version,
                "registry_alias": registration.alias or "none",
                "comparability_key": key.digest(),
            }
        )
    write_split(paths.evaluate_metrics, paths.evaluate_info, metrics)
    print(f"evaluate {name}: {metrics['objective']} {metrics['test_score']:.2f} nats/image")
    print(f"evaluate {name}: {registration.summary()}")


if __name__ == "__main__":
    run_model_stage("pipelines.evaluate_density", evaluate)
