"""What the density stage scripts share: the model argument and checks before any run starts."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from pml_ops.config import Params
from pml_ops.core.errors import ConfigError
from pml_ops.density import families
from pml_ops.runtime.stage import run_stage


def run_model_stage(script: str, stage: Callable[[Params, str], None]) -> None:
    """`python -m <script> MODEL`: validate params, look MODEL up in the registry and build its
    network (a bad name or an unbuildable architecture stops here, before any MLflow run), then
    run `stage(params, MODEL)`."""
    name = sys.argv[1] if len(sys.argv) == 2 else ""

    def checked(params: Params) -> None:
        if len(sys.argv) != 2:
            raise ConfigError(f"usage: python -m {script} {{{','.join(families.model_names(params))}}}")
        families.check_buildable(params, name)
        stage(params, name)

    run_stage(checked)


def numeric(metrics: dict[str, Any], skip: set[str] | frozenset[str] = frozenset()) -> dict[str, float]:
    """The numbers among `metrics` (for mlflow.log_metrics), leaving out `skip`."""
    return {k: float(v) for k, v in metrics.items() if isinstance(v, int | float) and k not in skip}
