"""DVC stage `report`: the study report (HTML + Markdown) from every stage's metrics and figures."""

from __future__ import annotations

import time
from pathlib import Path

from pml_ops.config import Params
from pml_ops.core.metrics_files import write_metrics
from pml_ops.core.resources import resource_metrics
from pml_ops.report import write_report
from pml_ops.report.sections import build_study_report
from pml_ops.runtime.stage import run_stage
from pml_ops.tracking.run_group import tracked_stage


def report(params: Params) -> None:
    import mlflow  # deferred: ~1.3 s at import; the report stage checks params.yaml before paying it

    began = time.perf_counter()
    root = Path.cwd()
    spec = build_study_report(params, root)
    html, markdown = Path(params.report.html), Path(params.report.markdown)
    write_report(spec, html, markdown, base_dir=root)
    with tracked_stage(params, "report", {"stage": "report"}):
        mlflow.log_artifact(str(html), artifact_path="report")
        mlflow.log_artifact(str(markdown), artifact_path="report")
        mlflow.log_metrics(
            {f"stage_wall_time_s/{k.replace('@', '_')}": v for k, v in spec.stage_times.items()}
        )
    write_metrics(params.report.metrics, resource_metrics(began))
    print(f"report: wrote {html} and {markdown}")


if __name__ == "__main__":
    run_stage(report)
