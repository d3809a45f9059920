"""The root `Params` model (all of params.yaml), the `models` list's `ModelEntry` and the checks
that span sections.

The sections of the density families are not spelled out here: each family found
(`pml_ops.config.families`) adds its section, validated by the family's own schema, between
`density` and `evaluate`. `params_model` builds that class once per process (and per set of
families the `models` list uses, whose sections are required; any other family's section is
optional); `parse_params` validates with it."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Annotated, Any

from pydantic import Field, create_model, field_validator, model_validator
from pydantic_core import PydanticCustomError

from pml_ops.config.base import NonEmptyStr, Section
from pml_ops.config.bayesopt import BayesOptParams
from pml_ops.config.data import DataParams
from pml_ops.config.density import DensityParams, EvaluateParams, override_architecture
from pml_ops.config.families import FamilySchema, Found, discover
from pml_ops.config.gp import GPParams, check_kernel_priors
from pml_ops.config.report import ReportParams
from pml_ops.config.tracking import TrackingParams
from pml_ops.config.tuning import TuningParams

# The project's own params file: `load_params` reads it by default, and a model whose `file` is
# another one reads a tuned section.
DEFAULT_PARAMS_FILE = "params.yaml"


def _one_of(names: list[str]) -> str:
    """'a', 'b' or 'c': the known values, as pydantic words a Literal's."""
    quoted = [repr(name) for name in names]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


class ModelEntry(Section):
    """One density model of the study (an entry of `models`). `family` picks the model class and
    its params.yaml section (any family found: pml-ops's own or a `pml_ops.families` entry point).
    `file` and `section` say where its hyperparameters live: the family's own section of
    params.yaml, or a tuned section of `tuning.best_params_file` whose architecture and learning
    rate replace the family's (`base` is then `<family>.training`, the settings kept). dvc.yaml's
    `foreach` reads `file`, `section` and `base` as the parameters the model's stages depend on,
    so they are checked to be exactly what the stages read."""

    family: str
    file: NonEmptyStr
    section: NonEmptyStr
    base: NonEmptyStr
    # VAE families: keys of the architecture (from `file`: `section`) replaced for this model only,
    # e.g. `vae_cb`'s {decoder: continuous_bernoulli}; the rest of the model stays the section's.
    architecture: Annotated[dict[NonEmptyStr, Any], Field(min_length=1)] | None = None

    @field_validator("family")
    @classmethod
    def _a_known_family(cls, value: str) -> str:
        known = list(density_families())
        if value not in known:
            # worded as the error of a Literal of the known names (as the field was before plug-ins)
            expected = {"expected": _one_of(known)}
            raise PydanticCustomError("literal_error", "Input should be {expected}", expected)
        return value

    @property
    def tuned(self) -> bool:
        return self.file != DEFAULT_PARAMS_FILE


class CoreSections(Section):
    """The sections before the density families' (see `Params`)."""

    data: DataParams
    tracking: TrackingParams
    gp: GPParams
    bayesopt: BayesOptParams
    density: DensityParams


class Params(CoreSections):
    """All of params.yaml. An instance is of the class `params_model` builds, which adds one
    section per density family (read them with `section`)."""

    evaluate: EvaluateParams
    report: ReportParams
    tuning: TuningParams
    models: Annotated[dict[NonEmptyStr, ModelEntry], Field(min_length=1)]

    def section(self, family: str) -> Any:
        """The params.yaml section of density family `family` (None when absent: no model uses it)."""
        return getattr(self, family)

    def __reduce__(self) -> Any:
        # The class is built at run time: a copy in another process (pickle) rebuilds it there.
        return (_restore, (_used_families(self.models), self.__getstate__()))

    @model_validator(mode="after")
    def _check_models(self) -> Params:
        known = density_families()
        for name, entry in self.models.items():
            family: FamilySchema = known[entry.family].family
            expected: dict[str, str]
            if not entry.tuned:
                expected = {"section": entry.family, "base": entry.family}
            elif not family.tuned:
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
                if "architecture" not in family.section.model_fields:
                    raise ValueError(
                        f"models.{name}.architecture: a {entry.family} model has no architecture"
                    )
                architecture = self.section(entry.family).architecture
                override_architecture(architecture, entry.architecture, f"models.{name}.architecture")
        return self

    @model_validator(mode="after")
    def _check_bayesopt_kernel_priors(self) -> Params:
        """The BO loop's GP takes its priors from `gp.priors`."""
        check_kernel_priors(self.bayesopt.kernel, self.gp.priors, "bayesopt.kernel")
        return self

    @model_validator(mode="after")
    def _check_family_sections(self) -> Params:
        """Each family's own checks of its section against the shared settings (e.g. EM needs at
        least one training image per GMM component)."""
        for name, found in density_families().items():
            section, validate = self.section(name), found.family.validate
            if section is not None and validate is not None:
                validate(section, self.density)
        return self


def _reserved() -> frozenset[str]:
    """Names a family may not take: params.yaml's other sections and the attributes of `Params`."""
    return frozenset(Params.model_fields) | frozenset(dir(Params))


@functools.cache
def density_families() -> dict[str, Found]:
    """Every density family found (`pml_ops.config.families.discover`), once per process."""
    return discover(_reserved())


def rediscover() -> None:
    """Forget the families found (and the classes built from them): the next call looks again,
    e.g. after a package that declares a family was installed into this process's path."""
    density_families.cache_clear()
    _params_model.cache_clear()


def _used_families(models: Any) -> frozenset[str]:
    """The families that the `models` entries name (of raw or validated entries; others ignored)."""
    if not isinstance(models, dict):
        return frozenset()
    named = (e.get("family") if isinstance(e, dict) else getattr(e, "family", None) for e in models.values())
    return frozenset(family for family in named if isinstance(family, str))


def params_model(used: Iterable[str] = ()) -> type[Params]:
    """The `Params` class for the families found: the sections of the families in `used` (those
    the `models` list names) are required, any other family's is optional."""
    return _params_model(frozenset(used) & frozenset(density_families()))


@functools.cache
def _params_model(required: frozenset[str]) -> type[Params]:
    fields: dict[str, Any] = {
        name: (found.family.section, ...) if name in required else (found.family.section | None, None)
        for name, found in density_families().items()
    }
    # The fields follow the bases' reversed MRO: CoreSections', the families', then Params' own
    # (the order of validation errors, as when each section was a field of Params).
    sections: Any = create_model("FamilySections", __base__=CoreSections, **fields)
    return create_model("Params", __base__=(Params, sections), __module__=__name__)


def parse_model(raw: dict[str, Any]) -> type[Params]:
    """The class that validates the mapping `raw` (params.yaml as loaded)."""
    return params_model(_used_families(raw.get("models")))


def _restore(used: frozenset[str], state: dict[str, Any]) -> Params:
    cls = params_model(used)
    params = cls.__new__(cls)
    params.__setstate__(state)
    return params
