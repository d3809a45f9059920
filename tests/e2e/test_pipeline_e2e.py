"""The whole pipeline at reduced settings: the report as a person sees it (headless Chromium),
the report's MLflow run, same seed -> same metrics, and a second `dvc repro` that does nothing."""

from __future__ import annotations

import json
import re
import shutil

import pytest
import torch
from mlflow.tracking import MlflowClient

from pml_ops.config import load_params
from pml_ops.density import families
from pml_ops.report.sections import display_name
from tests.conftest import REPO_ROOT, copy_clone, run
from tests.helpers.browser import chromium
from tests.unit.report.test_report_browser import PROBE

pytestmark = pytest.mark.e2e

ARTIFACTS = REPO_ROOT / "test-artifacts"


def test_report_renders_with_every_figure_and_one_row_per_model(pipeline_run, tmp_path):
    clone, stdout, _ = pipeline_run
    assert "Running stage 'report'" in stdout
    params = load_params(clone / "params.yaml")
    models = families.model_names(params)
    html = (clone / "reports" / "report.html").read_text()
    markdown = (clone / "reports" / "report.md").read_text()
    assert "Bayesian GP fitting" in markdown and "Stage wall times" in markdown
    figures = sorted((clone / "figures").rglob("*.png"))
    folders = [folder for folder in (clone / "figures").iterdir() if folder.is_dir()]
    per_folder = {folder.name: len(list(folder.glob("*.png"))) for folder in folders}
    # GP: densities, trace, log-log scatter, predictive, x*; BO: 2 snapshots + best so far.
    # Each model: latent space, decoder grid and reconstructions, or the GMM's components.
    per_model = {name: 1 if families.family_of(params, name).name == "gmm" else 3 for name in models}
    assert per_folder == {"gp": 5, "bayesopt": 3, **per_model}
    # ... and each tuning study's Pareto front (tuning/<model>/figures/pareto_front.png)
    pareto = sorted((clone / "tuning").glob("*/figures/pareto_front.png"))
    assert html.count("<img ") == len(figures) + len(pareto)

    probed = tmp_path / "probed.html"
    probed.write_text(html.replace("</body>", PROBE + "</body>"))
    dom = chromium(probed, tmp_path / "profile", "--virtual-time-budget=10000", "--dump-dom").stdout
    images = re.findall(r"<img [^>]*>", dom)
    assert len(images) == len(figures) + len(pareto)
    assert all('data-loaded="true"' in img for img in images), [i[-120:] for i in images if "true" not in i]

    density = dom.split("Test-set comparison")[1].split("</table>")[0]
    rows = density.split("<tbody>")[1].split("</tr>")[:-1]
    shown = [re.search(r"<td[^>]*>([^<]*)</td>", row).group(1) for row in rows]
    assert shown == [display_name(name) for name in models]  # e.g. cvae_tuned: "CVAE (tuned)"
    assert "-142.8" in density  # the study's own number beside ours

    shot = tmp_path / "report.png"
    chromium(
        clone / "reports" / "report.html", tmp_path / "p2", "--window-size=1280,2400", f"--screenshot={shot}"
    )
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(shot, ARTIFACTS / "pipeline-report-screenshot.png")
    assert shot.stat().st_size > 10_000


def test_report_is_logged_to_mlflow_in_the_pipeline_group(pipeline_run):
    clone, _, _ = pipeline_run
    client = MlflowClient(f"sqlite:///{clone / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("pml-ops")
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    report = runs["report"]
    assert report.data.tags["pipeline"] == runs["train vae"].data.tags["pipeline"]
    paths = {a.path for a in client.list_artifacts(report.info.run_id, "report")}
    assert paths == {"report/report.html", "report/report.md"}
    assert report.data.metrics["stage_wall_time_s/train_vae"] > 0


def test_second_repro_does_nothing(pipeline_run):
    clone, _, env = pipeline_run
    again = run(["dvc", "repro"], clone, env)
    assert "Running stage" not in again.stdout
    # dvc.yaml: the default pipeline (tuning/dvc.yaml runs only when asked for).
    assert "Data and pipelines are up to date." in run(["dvc", "status", "dvc.yaml"], clone, env).stdout


def _without_timings(metrics: dict) -> dict:
    """Results only: wall times, rates and peak memory are measurements of the run."""
    return {
        k: v
        for k, v in metrics.items()
        if "time" not in k
        and k != "seconds"
        and not k.endswith(("_per_s", "per_second"))
        and k != "peak_rss_mib"
    }


def test_same_seed_gives_identical_metrics_and_weights(pipeline_run, tmp_path):
    clone, _, env = pipeline_run
    copy = copy_clone(clone, tmp_path / "copy")
    files = [
        "metrics/train/vae.json",
        "metrics/evaluate/vae.json",
        "metrics/gp.json",
        "metrics/bayesopt.json",
    ]
    before = {name: json.loads((clone / name).read_text()) for name in files}
    for stage in ("train@vae", "evaluate@vae", "gp", "bayesopt"):
        out = run(["dvc", "repro", "--force", "--single-item", stage], copy, env)
        assert f"Running stage '{stage}'" in out.stdout
    for name in files:
        assert _without_timings(json.loads((copy / name).read_text())) == _without_timings(before[name]), name
    history = "metrics/train/vae_history.json"
    strip = lambda rows: [_without_timings(r) for r in rows]  # noqa: E731
    assert strip(json.loads((copy / history).read_text())) == strip(json.loads((clone / history).read_text()))
    original = torch.load(clone / "models" / "vae" / "vae.pt", weights_only=True)["state_dict"]
    rerun = torch.load(copy / "models" / "vae" / "vae.pt", weights_only=True)["state_dict"]
    assert original.keys() == rerun.keys()
    assert all(torch.equal(original[k], rerun[k]) for k in original)
