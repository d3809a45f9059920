"""The one place that reads params.yaml into typed, validated configuration.

Every stage calls `load_params()` before doing any work, so a bad value stops the run at once
with a message that names the key. Values live in params.yaml only (no defaults hidden here):
a missing key is an error too, which keeps DVC's view of the parameters and ours identical.

What lives where (everything below is importable from `pml_ops.config` itself):

- `base`: the `Section` base model (unknown keys and silent coercion are errors) and the
  constrained types the sections share (`PositiveInt`, `NonEmptyStr`, ...).
- one module per params.yaml section group: `data`, `tracking`, `gp` (GP, priors, NUTS,
  predictive; the objective check for `gp` and `bayesopt`), `bayesopt`, `density` (the shared
  `density` settings, the VAE architectures and `override_architecture`, training, `vae`, `cvae`,
  `ppca`, `gmm`, `evaluate`), `tuning` (search spaces, studies, trial training, heartbeats) and
  `report`.
- `families`: the density families found (pml-ops's own and the `pml_ops.families` entry
  points) and what validation reads of each (`FamilySchema`: name, section schema, ...).
- `params`: the root `Params` model with one section per family found (`params_model`), the
  `models` list's `ModelEntry`, the checks across sections and `DEFAULT_PARAMS_FILE`.
- `loader`: YAML with duplicate-key detection (`load_yaml`, `YAML_LOADER`) and
  `parse_params` / `load_params`.
- `messages`: `format_validation_error`, validation errors as messages naming dotted keys.
- `profiles`: named sets of dotted keys applied to params.yaml (`python -m pml_ops.config.profiles`).
"""

from __future__ import annotations

from pml_ops.config.base import (
    Fraction,
    NonEmptyStr,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    Probability,
    Section,
)
from pml_ops.config.bayesopt import BayesOptOutputs, BayesOptParams, WarmStartParams
from pml_ops.config.data import DataParams, DatasetName
from pml_ops.config.density import (
    MAX_GMM_COMPONENTS,
    ConvVaeArchitecture,
    CvaeParams,
    Decoder,
    DensityParams,
    EvaluateParams,
    GmmParams,
    MlpVaeArchitecture,
    PpcaParams,
    SubsetParams,
    TrainingParams,
    VaeParams,
    override_architecture,
)
from pml_ops.config.families import FamilySchema
from pml_ops.config.gp import (
    GPOutputs,
    GPParams,
    GPPredictiveParams,
    GPPriorParams,
    LogNormalParams,
    NUTSParams,
)
from pml_ops.config.loader import YAML_LOADER, load_params, load_yaml, parse_params
from pml_ops.config.messages import format_validation_error
from pml_ops.config.params import (
    DEFAULT_PARAMS_FILE,
    ModelEntry,
    Params,
    density_families,
    params_model,
    rediscover,
)
from pml_ops.config.report import ReportParams
from pml_ops.config.tracking import TrackingParams
from pml_ops.config.tuning import (
    CategoricalParam,
    CvaeSpace,
    CvaeStudyParams,
    FloatParam,
    HeartbeatParams,
    IntParam,
    IntSpec,
    TrialTrainingParams,
    TuningParams,
    VaeSpace,
    VaeStudyParams,
)

__all__ = [
    "DEFAULT_PARAMS_FILE",
    "MAX_GMM_COMPONENTS",
    "YAML_LOADER",
    "BayesOptOutputs",
    "BayesOptParams",
    "CategoricalParam",
    "ConvVaeArchitecture",
    "CvaeParams",
    "CvaeSpace",
    "CvaeStudyParams",
    "DataParams",
    "DatasetName",
    "Decoder",
    "DensityParams",
    "EvaluateParams",
    "FamilySchema",
    "FloatParam",
    "Fraction",
    "GPOutputs",
    "GPParams",
    "GPPredictiveParams",
    "GPPriorParams",
    "GmmParams",
    "HeartbeatParams",
    "IntParam",
    "IntSpec",
    "LogNormalParams",
    "MlpVaeArchitecture",
    "ModelEntry",
    "NUTSParams",
    "NonEmptyStr",
    "NonNegativeInt",
    "Params",
    "PositiveFloat",
    "PositiveInt",
    "PpcaParams",
    "Probability",
    "ReportParams",
    "Section",
    "SubsetParams",
    "TrackingParams",
    "TrainingParams",
    "TrialTrainingParams",
    "TuningParams",
    "VaeParams",
    "VaeSpace",
    "VaeStudyParams",
    "WarmStartParams",
    "density_families",
    "format_validation_error",
    "load_params",
    "load_yaml",
    "override_architecture",
    "params_model",
    "parse_params",
    "rediscover",
]
