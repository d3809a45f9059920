"""The `tracking` section: the MLflow store and experiment every stage logs to."""

from __future__ import annotations

from pml_ops.config.base import NonEmptyStr, Section


class TrackingParams(Section):
    uri: NonEmptyStr
    experiment: NonEmptyStr
    artifact_root: NonEmptyStr
