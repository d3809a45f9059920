"""Group the MLflow runs of one `dvc repro` under one parent run.

Stages run as separate processes, so they agree on a group key instead of passing a run id: the
HEAD commit (without the `-dirty` mark, which flips as dvc.lock is rewritten during a repro) and
the content of params.yaml, or $PML_OPS_RUN_GROUP when set. Each stage's run is nested under the
parent run tagged with that key, created by whichever stage comes first, so the MLflow UI shows
one expandable row per pipeline version with every model's runs side by side. The parent starts
when the first stage starts; each stage that ends moves its end time on, so it ends when the last
stage ends. Every run also carries the key as the tag `pipeline` (the UI can group by it), the
DVC experiment name and the git commit.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pml_ops.config import DEFAULT_PARAMS_FILE, Params
from pml_ops.stage import stopping_run
from pml_ops.tracking import (
    configure,
    dvc_experiment,
    dvc_output_md5,
    git_commit,
    holding,
    retry_locked,
    store_lock,
)

GROUP_ENV = "PML_OPS_RUN_GROUP"
GROUP_TAG = "pml_ops.group"
ROLE_TAG = "pml_ops.role"
PIPELINE_TAG = "pipeline"


def group_key(project_dir: Path | None = None, params_file: str = DEFAULT_PARAMS_FILE) -> str:
    if os.environ.get(GROUP_ENV):
        return os.environ[GROUP_ENV]
    project = Path.cwd() if project_dir is None else project_dir
    commit = git_commit(project).removesuffix("-dirty")
    params_text = (project / params_file).read_bytes() if (project / params_file).is_file() else b""
    return hashlib.sha256(commit.encode() + b"\0" + params_text).hexdigest()[:12]


def parent_run_id(experiment_id: str, key: str) -> str:
    """The group's parent run: found, or created if there is none. Find-or-create runs under
    the store's lock, so stages starting at once (`dvc repro -j`, several workers) make one."""
    import mlflow
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    query = f"tags.`{GROUP_TAG}` = '{key}' and tags.`{ROLE_TAG}` = 'group'"

    def find_or_create() -> str:
        found = client.search_runs([experiment_id], filter_string=query, max_results=1)
        if found:
            return found[0].info.run_id
        run = client.create_run(
            experiment_id, run_name=f"pipeline {key}", tags={GROUP_TAG: key, ROLE_TAG: "group"}
        )
        client.set_terminated(run.info.run_id, "FINISHED")
        return run.info.run_id

    uri = mlflow.get_tracking_uri()
    with holding(store_lock(uri), "finding the pipeline's parent run"):
        return retry_locked(find_or_create, "finding the pipeline's parent run")


def extend_parent(run_id: str) -> None:
    """Move the parent run's end time to now, unless a later stage already moved it further."""
    import time

    import mlflow
    from mlflow.tracking import MlflowClient

    client = MlflowClient()

    def extend() -> None:
        now = int(time.time() * 1000)
        if (client.get_run(run_id).info.end_time or 0) < now:
            client.set_terminated(run_id, "FINISHED", end_time=now)

    with holding(store_lock(mlflow.get_tracking_uri()), "ending the pipeline's parent run"):
        retry_locked(extend, "ending the pipeline's parent run")


@contextlib.contextmanager
def stage_run(
    params: Params, run_name: str, tags: dict[str, str], system_metrics: bool = False
) -> Iterator[Any]:
    """An active MLflow run for one stage, nested under its pipeline group, with provenance tags
    (git commit, DVC md5 of the dataset, group key, DVC experiment); `system_metrics`: MLflow
    samples CPU and memory use during the run."""
    import mlflow

    experiment_id = configure(params.tracking)
    key = group_key()
    parent = parent_run_id(experiment_id, key)
    all_tags = {
        GROUP_TAG: key,
        PIPELINE_TAG: key,
        "git_commit": git_commit(),
        "data_md5": dvc_output_md5(params.data.path),
        "dvc_experiment": dvc_experiment(),
        **tags,
    }
    run = retry_locked(
        lambda: mlflow.start_run(
            run_name=run_name, parent_run_id=parent, tags=all_tags, log_system_metrics=system_metrics
        ),
        f"starting the MLflow run {run_name}",
    )
    with stopping_run(run.info.run_id):
        yield run
    extend_parent(parent)
