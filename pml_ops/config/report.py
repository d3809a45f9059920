"""The `report` section: where the report is written and the results shown beside ours."""

from __future__ import annotations

from pml_ops.config.base import NonEmptyStr, Section


class ReportParams(Section):
    html: NonEmptyStr
    markdown: NonEmptyStr
    bo_study: NonEmptyStr  # results of studies/bayesopt_study.py, shown when present
    seed_variation: NonEmptyStr  # results of studies/seed_variation.py, shown when present
    metrics: NonEmptyStr  # the report stage's own wall time and peak memory
    # The numbers the original study reported, shown beside ours: model -> {column: value}.
    study: dict[str, dict[str, float]]
