"""DVC stage `compare_density`: the comparison table of every density model (Markdown + JSON)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from pml_ops.config import Params
from pml_ops.core.io import atomic_path, write_json
from pml_ops.core.metrics_files import write_metrics
from pml_ops.core.resources import resource_metrics
from pml_ops.data.mnist import dataset
from pml_ops.density import families
from pml_ops.density.evaluation import comparison_rows
from pml_ops.density.families import COMPARISON_TABLE
from pml_ops.report.density_table import comparison_markdown
from pml_ops.runtime.stage import run_stage

TABLE_MD = Path("reports/density_comparison.md")


def compare(params: Params) -> None:
    start = time.perf_counter()
    metrics = Path(params.density.metrics_dir)
    files = {name: families.paths(params, name) for name in families.model_names(params)}
    train = {name: json.loads(p.train_metrics.read_text()) for name, p in files.items()}
    evaluation = {
        name: {**json.loads(p.evaluate_info.read_text()), **json.loads(p.evaluate_metrics.read_text())}
        for name, p in files.items()
    }
    rows = comparison_rows(train, evaluation)
    with atomic_path(TABLE_MD) as tmp:
        title = dataset(params.data.dataset).title
        table = comparison_markdown(rows, families.notes(params))
        tmp.write_text(f"# Density models on {title}: test-set comparison\n\n" + table)
    write_json(COMPARISON_TABLE, {"models": {row["model"]: row for row in rows}})
    write_metrics(metrics / "density_comparison.json", resource_metrics(start))
    print(f"compare_density: wrote {TABLE_MD} and {COMPARISON_TABLE}")


if __name__ == "__main__":
    run_stage(compare)
