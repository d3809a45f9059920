"""DVC stage `tune_<model>` (tuning/dvc.yaml, run only on request): add trials to the model's
Optuna study and write its summary, figures and the best-params file."""

import argparse

from pml_ops.config import Params
from pml_ops.runtime.stage import run_stage
from pml_ops.tuning.command import Overrides, describe, tune
from pml_ops.tuning.models import MODELS, DensityTask


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, choices=MODELS)
    model = parser.parse_args().model

    def stage(params: Params) -> None:
        summary = tune(params, DensityTask(model, params), Overrides())
        for line in describe(summary, params.tuning.best_params_file):
            print(f"tune_{model}: {line}")

    run_stage(stage)


if __name__ == "__main__":
    main()
