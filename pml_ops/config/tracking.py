"""The `tracking` section: the MLflow store and experiment every stage logs to, and the params
profile the run was made with (the model registry's champion rule reads it)."""

from __future__ import annotations

from typing import Literal

from pml_ops.config.base import NonEmptyStr, Section

# `study`: the settings of params.yaml as committed, whose test scores compete for the registry's
# `champion`; `smoke`: profiles/smoke.yaml's reduced settings, registered but never champion.
Profile = Literal["study", "smoke"]


class TrackingParams(Section):
    uri: NonEmptyStr
    experiment: NonEmptyStr
    artifact_root: NonEmptyStr
    profile: Profile = "study"
