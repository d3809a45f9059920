"""The MLflow Model Registry side of the pipeline: one registered model per density model, versions
tagged with their provenance, and the aliases `champion` (the best test score so far) and
`challenger` (the latest version that did not beat it).

Higher test scores are better (log-densities in nats per image). The champion is compared by its
version's `test_score` tag; the decision and the alias move happen under the store's lock, so two
evaluations of the same model at once cannot both become champion.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from pml_ops.tracking.provenance import (
    LOCK_DIGEST_TAG,
    dvc_experiment,
    dvc_output_md5,
    git_commit,
    lock_digest,
)
from pml_ops.tracking.store import holding, retry_locked, store_lock

PREFIX = "pml-ops-"
CHAMPION = "champion"
CHALLENGER = "challenger"
SCORE_TAG = "test_score"


def registered_name(model: str) -> str:
    """The stable registry name of the density model `model` (its key in params.yaml)."""
    return PREFIX + model


@dataclass(frozen=True)
class Registration:
    name: str
    version: str
    alias: str  # CHAMPION or CHALLENGER
    previous_champion: str | None  # its version, if there was one
    previous_score: float | None


def champion(client: Any, name: str) -> tuple[str, float] | None:
    """(version, test score) of the current champion of `name`, or None."""
    try:
        version = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None
    return version.version, float(version.tags[SCORE_TAG])


def register(model_uri: str, model: str, test_score: float, tags: dict[str, str]) -> Registration:
    """Register `model_uri` as a new version of `pml-ops-<model>` with `tags` and its test score;
    point `champion` at it when it beats the current champion (or there is none), else
    `challenger`."""
    client = MlflowClient()
    name = registered_name(model)
    all_tags = {**tags, SCORE_TAG: repr(float(test_score))}
    with holding(store_lock(mlflow.get_tracking_uri()), f"registering {name}"):
        version = retry_locked(
            lambda: mlflow.register_model(model_uri, name, tags=all_tags), f"registering a version of {name}"
        )
        client.update_registered_model(
            name, description=f"Density model `{model}` of pml-ops: the `models` list of params.yaml"
        )
        current = champion(client, name)
        alias = CHAMPION if current is None or test_score > current[1] else CHALLENGER
        client.set_registered_model_alias(name, alias, version.version)
    before_version, before_score = current if current is not None else (None, None)
    return Registration(name, version.version, alias, before_version, before_score)


def params_digest(values: dict[str, Any]) -> str:
    """A short digest of the settings that made a model (sorted JSON, sha256)."""
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:16]


def version_tags(data_path: str, settings: dict[str, Any], run_id: str) -> dict[str, str]:
    """Provenance of a model version: the DVC md5 of the data, the git commit, a digest of the
    settings that made the model, the evaluate run and the lock's sha256."""
    return {
        "data_md5": dvc_output_md5(data_path),
        "git_commit": git_commit(),
        "params_digest": params_digest(settings),
        "dvc_experiment": dvc_experiment(),
        "evaluate_run_id": run_id,
        LOCK_DIGEST_TAG: lock_digest(),
    }
