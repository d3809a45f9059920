"""DVC stage `evaluate_<model>`: test metrics and figures for one trained density model.

python -m pipelines.evaluate_density {vae,cvae,ppca,gmm}
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from pml_ops.config import Params
from pml_ops.density import figures
from pml_ops.density.data import density_split, resolve_device, to_unit_float
from pml_ops.density.evaluation import evaluate_model
from pml_ops.density.interface import LatentDensityModel
from pml_ops.density.store import MODELS, load_model
from pml_ops.errors import ConfigError
from pml_ops.io import write_json
from pml_ops.run_group import stage_run
from pml_ops.stage import run_stage


def draw_figures(params: Params, name: str, model, x_test, y_test) -> list[Path]:
    out = Path(params.density.figures_dir) / name
    ev, seed, label = params.evaluate, params.density.seed, name.upper()
    if isinstance(model, LatentDensityModel):
        first = x_test[: ev.n_reconstructions]
        return [
            figures.latent_scatter(
                model.encode(x_test), y_test, f"{label}: test set in latent space", out / "latent.png"
            ),
            figures.latent_grid(
                model, ev.grid_size, ev.grid_span, f"{label}: decoder means", out / "grid.png"
            ),
            figures.reconstructions(
                first,
                model.reconstruct(first, sample=False, seed=seed),
                f"{label}: test digits (top) and reconstructions from the posterior mean",
                out / "reconstructions.png",
            ),
        ]
    k = len(model.component_means())
    samples = [model.sample_component(i, ev.samples_per_component, seed + i) for i in range(k)]
    return [
        figures.gmm_components(
            model.component_means(),
            samples,
            f"{label}: component means (left) and samples",
            out / "components.png",
        )
    ]


def evaluate(params: Params, name: str) -> None:
    import mlflow

    start = time.perf_counter()
    split = density_split(params)
    device = resolve_device(params.density.device, params.density.cpu_threads)
    model = load_model(params, name, device)
    x_train, x_test = to_unit_float(split.x_train), to_unit_float(split.x_test)
    with stage_run(params, f"evaluate {name}", {"stage": f"evaluate_{name}", "model": name}):
        mlflow.log_params({f"evaluate.{k}": v for k, v in params.evaluate.model_dump().items()})
        metrics = evaluate_model(
            model, x_train, split.y_train, x_test, split.y_test, params.evaluate, params.density.seed
        )
        for path in draw_figures(params, name, model, x_test, split.y_test):
            mlflow.log_artifact(str(path), artifact_path="figures")
        metrics["wall_time_s"] = time.perf_counter() - start
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if isinstance(v, int | float)})
    write_json(Path(params.density.metrics_dir) / "evaluate" / f"{name}.json", metrics)
    print(f"evaluate {name}: {metrics['objective']} {metrics['test_score']:.2f} nats/image")


def main() -> None:
    name = sys.argv[1] if len(sys.argv) == 2 else ""

    def stage(params: Params) -> None:
        if name not in MODELS:
            raise ConfigError(
                f"usage: python -m pipelines.evaluate_density {{{','.join(MODELS)}}} (got {name!r})"
            )
        evaluate(params, name)

    run_stage(stage)


if __name__ == "__main__":
    main()
