"""One MLflow run per stage, all runs of one `dvc repro` marked as one pipeline run.

Stages run as separate processes, so they agree on a key instead of passing a run id: the HEAD
commit (without the `-dirty` mark, which flips as dvc.lock is rewritten during a repro) and the
content of params.yaml, or $PML_OPS_RUN_GROUP when set. Every stage's run carries it as the tag
`pipeline`. The layout is flat, with no parent run: MLflow 3's runs table shows a parent as one
collapsed row, hiding the models' runs, their Dataset and Models columns and their metrics, while
flat runs are side by side at once and "Group by" tag `pipeline` gives the per-pipeline view. With
no parent to find or create, stages that start together cannot race. Each run also carries the
DVC experiment name, the git commit, the DVC md5 of the data and the sha256 of the lock.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pml_ops.config import DEFAULT_PARAMS_FILE, Params
from pml_ops.runtime.stage import stopping_run
from pml_ops.tracking.provenance import (
    LOCK_DIGEST_TAG,
    dvc_experiment,
    dvc_output_md5,
    git_commit,
    lock_digest,
)
from pml_ops.tracking.store import configure, retry_locked

GROUP_ENV = "PML_OPS_RUN_GROUP"
PIPELINE_TAG = "pipeline"
# MLflow's default (10 s), even 2 s, leaves a short (smoke) stage without a sample.
SYSTEM_METRICS_INTERVAL_S = 0.5


def group_key(project_dir: Path | None = None, params_file: str = DEFAULT_PARAMS_FILE) -> str:
    if os.environ.get(GROUP_ENV):
        return os.environ[GROUP_ENV]
    project = Path.cwd() if project_dir is None else project_dir
    commit = git_commit(project).removesuffix("-dirty")
    params_text = (project / params_file).read_bytes() if (project / params_file).is_file() else b""
    return hashlib.sha256(commit.encode() + b"\0" + params_text).hexdigest()[:12]


@contextlib.contextmanager
def tracked_stage(
    params: Params, run_name: str, tags: dict[str, str], system_metrics: bool = False
) -> Iterator[Any]:
    """An active MLflow run for one stage with provenance tags (pipeline key, git commit, DVC md5
    of the dataset, DVC experiment, lock digest); `system_metrics`: MLflow samples CPU and memory use during
    the run."""
    # deferred: ~1.3 s at import; the report stage starts light, and the NUTS chain workers that the
    # gp and bayesopt stages spawn on macOS and Windows re-import this module with the stage script
    import mlflow

    configure(params.tracking)
    if system_metrics:
        mlflow.set_system_metrics_sampling_interval(SYSTEM_METRICS_INTERVAL_S)
    all_tags = {
        PIPELINE_TAG: group_key(),
        "git_commit": git_commit(),
        "data_md5": dvc_output_md5(params.data.path),
        "dvc_experiment": dvc_experiment(),
        LOCK_DIGEST_TAG: lock_digest(),
        **tags,
    }
    run = retry_locked(
        lambda: mlflow.start_run(run_name=run_name, tags=all_tags, log_system_metrics=system_metrics),
        f"starting the MLflow run {run_name}",
    )
    with stopping_run(run.info.run_id):
        yield run
