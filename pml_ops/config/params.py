"""The root `Params` model (all of params.yaml), the `models` list's `ModelEntry` and the checks
that span sections."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from pml_ops.config.base import NonEmptyStr, Section
from pml_ops.config.bayesopt import BayesOptParams
from pml_ops.config.data import DataParams
from pml_ops.config.density import (
    CvaeParams,
    DensityParams,
    EvaluateParams,
    GmmParams,
    PpcaParams,
    VaeParams,
    override_architecture,
)
from pml_ops.config.gp import GPParams, check_kernel_priors
from pml_ops.config.report import ReportParams
from pml_ops.config.tracking import TrackingParams
from pml_ops.config.tuning import TuningParams

# The project's own params file: `load_params` reads it by default, and a model whose `file` is
# another one reads a tuned section.
DEFAULT_PARAMS_FILE = "params.yaml"


class ModelEntry(Section):
    """One density model of the study (an entry of `models`). `family` picks the model class and
    its params.yaml section. `file` and `section` say where its hyperparameters live: the family's
    own section of params.yaml, or a tuned section of `tuning.best_params_file` whose architecture
    and learning rate replace the family's (`base` is then `<family>.training`, the settings kept).
    dvc.yaml's `foreach` reads `file`, `section` and `base` as the parameters the model's stages
    depend on, so they are checked to be exactly what the stages read."""

    family: Literal["vae", "cvae", "ppca", "gmm"]
    file: NonEmptyStr
    section: NonEmptyStr
    base: NonEmptyStr
    # VAE families: keys of the architecture (from `file`: `section`) replaced for this model only,
    # e.g. `vae_cb`'s {decoder: continuous_bernoulli}; the rest of the model stays the section's.
    architecture: Annotated[dict[NonEmptyStr, Any], Field(min_length=1)] | None = None

    @property
    def tuned(self) -> bool:
        return self.file != DEFAULT_PARAMS_FILE


class Params(Section):
    data: DataParams
    tracking: TrackingParams
    gp: GPParams
    bayesopt: BayesOptParams
    density: DensityParams
    vae: VaeParams
    cvae: CvaeParams
    ppca: PpcaParams
    gmm: GmmParams
    evaluate: EvaluateParams
    report: ReportParams
    tuning: TuningParams
    models: Annotated[dict[NonEmptyStr, ModelEntry], Field(min_length=1)]

    @model_validator(mode="after")
    def _check_models(self) -> Params:
        for name, entry in self.models.items():
            expected: dict[str, str]
            if not entry.tuned:
                expected = {"section": entry.family, "base": entry.family}
            elif entry.family not in ("vae", "cvae"):
                raise ValueError(f"models.{name}.file: only VAE families read a tuned section")
            else:
                expected = {"base": f"{entry.family}.training"}
            for key, value in expected.items():
                if getattr(entry, key) != value:
                    raise ValueError(
                        f"models.{name}.{key}: must be {value!r} for a {entry.family} model read "
                        f"from {entry.file} (got {getattr(entry, key)!r})"
                    )
            if entry.architecture is not None:
                if entry.family not in ("vae", "cvae"):
                    raise ValueError(
                        f"models.{name}.architecture: a {entry.family} model has no architecture"
                    )
                family: VaeParams | CvaeParams = getattr(self, entry.family)
                override_architecture(family.architecture, entry.architecture, f"models.{name}.architecture")
        return self

    @model_validator(mode="after")
    def _check_bayesopt_kernel_priors(self) -> Params:
        """The BO loop's GP takes its priors from `gp.priors`."""
        check_kernel_priors(self.bayesopt.kernel, self.gp.priors, "bayesopt.kernel")
        return self

    @model_validator(mode="after")
    def _check_gmm_fits_the_data(self) -> Params:
        """EM needs at least one training image per component."""
        if self.density.subset.train is None:
            return self
        n_train = self.density.subset.train - round(
            self.density.subset.train * self.density.validation_fraction
        )
        if self.gmm.n_components > n_train:
            raise ValueError(
                f"gmm.n_components: {self.gmm.n_components} components need at least as many "
                f"training images, density.subset.train leaves {n_train} after the validation split"
            )
        return self
