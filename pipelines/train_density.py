"""DVC stage `train_<model>`: train or fit one density model, write it, its metrics and curves.

python -m pipelines.train_density {vae,cvae,ppca,gmm}
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from pml_ops.config import Params, model_section
from pml_ops.density.data import density_split, image_tensor, resolve_device, to_unit_float
from pml_ops.density.store import LATENT_VAES, MODELS, save_model
from pml_ops.errors import ConfigError
from pml_ops.io import write_json
from pml_ops.run_group import stage_run
from pml_ops.stage import run_stage


def _train_vae(params: Params, name: str, split, mlflow) -> tuple[object, dict]:
    from pml_ops.density.architectures import build_model
    from pml_ops.density.training import train_vae

    section = model_section(params, name)
    device = resolve_device(params.density.device, params.density.cpu_threads)
    model = build_model(section.architecture, params.density.seed)
    mlflow.log_params({"device": str(device), "parameters": sum(p.numel() for p in model.parameters())})

    def log_epoch(stats) -> None:
        mlflow.log_metrics({"train_elbo": stats.train_elbo, "val_elbo": stats.val_elbo}, step=stats.epoch)
        print(f"{name}: epoch {stats.epoch} train ELBO {stats.train_elbo:.2f} val ELBO {stats.val_elbo:.2f}")

    checkpoint = Path(params.density.checkpoint_dir) / f"{name}.pt"
    result = train_vae(
        model,
        image_tensor(split.x_train, device),
        image_tensor(split.x_val, device),
        section.training,
        seed=params.density.seed,
        checkpoint=checkpoint,
        fingerprint=repr(section.architecture),
        on_epoch=log_epoch,
        label=name,
    )
    checkpoint.unlink()  # only an interrupted run leaves one: never resume a finished, older run
    history = [asdict(stats) for stats in result.history]
    write_json(Path(params.density.metrics_dir) / "train" / f"{name}_history.json", history)
    last = result.history[-1]
    metrics = {
        "train_elbo": last.train_elbo,
        "val_elbo": last.val_elbo,
        "epochs": len(history),
        "resumed_from_epoch": result.resumed_from_epoch,
        "images_per_second": float(np.median([s.images_per_second for s in result.history])),
    }
    return result.model, metrics


def _fit_closed_form(params: Params, name: str, split, mlflow) -> tuple[object, dict]:
    x_train, x_val = to_unit_float(split.x_train), to_unit_float(split.x_val)
    if name == "ppca":
        from pml_ops.density.ppca import PPCA

        model = PPCA.fit(x_train, params.ppca.latent_dim)
        extra = {"sigma2": model.sigma2}
    else:
        from pml_ops.density.gmm import GMM

        model = GMM.fit(x_train, params.gmm, params.density.seed)
        extra = {"converged": bool(model.mixture.converged_), "em_iterations": int(model.mixture.n_iter_)}
    metrics = {
        "train_log_likelihood": float(np.mean(model.log_density(x_train))),
        "val_log_likelihood": float(np.mean(model.log_density(x_val))),
        **extra,
    }
    return model, metrics


def _log_model(name: str, model, path: Path, example: np.ndarray, mlflow) -> None:
    if name in LATENT_VAES:
        import mlflow.pytorch

        # pt2 (torch.export) format: forward(x) maps images (N, 1, 28, 28) to reconstructions.
        import torch

        mlflow.pytorch.log_model(
            model.cpu(),
            name="model",
            input_example=example,
            pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"],  # skips slow inference
        )
    elif name == "gmm":
        import mlflow.sklearn
        import sklearn

        mlflow.sklearn.log_model(
            model.mixture, name="model", pip_requirements=[f"scikit-learn=={sklearn.__version__}"]
        )
    else:
        mlflow.log_artifact(str(path), artifact_path="model")


def train(params: Params, name: str) -> None:
    import mlflow

    start = time.perf_counter()
    split = density_split(params)
    section = model_section(params, name)
    with stage_run(params, f"train {name}", {"stage": f"train_{name}", "model": name}):
        flat = {f"{name}.{k}": v for k, v in section.model_dump().items()}
        mlflow.log_params({**flat, "seed": params.density.seed, "train_images": len(split.x_train)})
        if name in LATENT_VAES:
            model, metrics = _train_vae(params, name, split, mlflow)
        else:
            model, metrics = _fit_closed_form(params, name, split, mlflow)
        path = save_model(params, name, model)
        example = (split.x_val[:2, None] / 255.0).astype(np.float32)
        _log_model(name, model, path, example, mlflow)
        metrics["train_images"] = len(split.x_train)
        metrics["validation_images"] = len(split.x_val)
        metrics["wall_time_s"] = time.perf_counter() - start
        per_epoch = {"train_elbo", "val_elbo"}  # already logged with their epoch as step
        mlflow.log_metrics(
            {k: float(v) for k, v in metrics.items() if isinstance(v, int | float) and k not in per_epoch}
        )
    write_json(Path(params.density.metrics_dir) / "train" / f"{name}.json", metrics)
    print(f"train {name}: wrote {path} in {metrics['wall_time_s']:.1f} s")


def main() -> None:
    name = sys.argv[1] if len(sys.argv) == 2 else ""

    def stage(params: Params) -> None:
        if name not in MODELS:
            raise ConfigError(
                f"usage: python -m pipelines.train_density {{{','.join(MODELS)}}} (got {name!r})"
            )
        train(params, name)

    run_stage(stage)


if __name__ == "__main__":
    main()
