"""Tuning the real models on a tiny subset: the CLI end to end on SQLite (impossible
architectures recorded as failed trials) and two workers on one PostgreSQL study."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import pytest
import yaml
from mlflow.tracking import MlflowClient

from pml_ops.cli.main import main
from pml_ops.config import MlpVaeArchitecture, parse_params
from pml_ops.data.mnist import Mnist, save_mnist
from pml_ops.density.architectures import build_model
from pml_ops.tuning.command import Overrides, tune
from pml_ops.tuning.cost import training_mflop_per_image
from pml_ops.tuning.models import DensityTask
from pml_ops.tuning.storage import resolve_storage
from tests.conftest import REPO_ROOT

# The study's CVAE (kernel 3, stride 2, 16-32 channels) and one whose decoder cannot return to
# 28x28 (three stride-2 layers: 28-14-7-4, back 4-8-16-32).
STUDY_CVAE = {"kernel_size": 3, "stride": 2, "conv_layers": 2, "hidden": 0, "lr": 1e-3}
STUDY_CVAE |= {"channels_1": 16, "channels_2": 32}
IMPOSSIBLE = {**STUDY_CVAE, "conv_layers": 3, "channels_3": 8}
# Three stride-1 64-channel 7x7 layers: hundreds of times the study CVAE's FLOPs, never trained.
COSTLY = {**STUDY_CVAE, "kernel_size": 7, "stride": 1, "conv_layers": 3, "channels_1": 64, "channels_2": 64}
COSTLY |= {"channels_3": 64}


@pytest.fixture(scope="module")
def mnist_file(tmp_path_factory) -> Path:
    """An MNIST-shaped artifact (random sparse strokes): trials only need its shapes and scale."""
    rng = np.random.default_rng(0)

    def images(n: int) -> np.ndarray:
        return ((rng.random((n, 28, 28), dtype=np.float32) < 0.15) * 255).astype(np.uint8)

    data = Mnist(
        x_train=images(60000),
        y_train=rng.integers(0, 10, 60000, dtype=np.uint8),
        x_test=images(10000),
        y_test=rng.integers(0, 10, 10000, dtype=np.uint8),
    )
    path = tmp_path_factory.mktemp("data") / "mnist.npz"
    save_mnist(data, path)
    return path


def write_params(tmp_path: Path, mnist_file: Path, storage: str) -> Path:
    raw = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    raw["data"]["path"] = str(mnist_file)
    raw["tracking"].update(uri=f"sqlite:///{tmp_path}/mlflow.db", artifact_root=str(tmp_path / "mlartifacts"))
    tuning = raw["tuning"]
    tuning.update(
        storage=storage,
        output_dir=str(tmp_path / "tuning"),
        best_params_file=str(tmp_path / "params_tuned.yaml"),
    )
    # A wide budget (the machinery is tested here, promotion in test_tuning_cost.py); trials over
    # 8x the model's own FLOPs per image are still pruned before training.
    tuning["trial"].update(epochs=2, train_size=256, validation_size=128, max_cost_ratio=8.0)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_tune_cli_on_sqlite_records_impossible_architecture(tmp_path, mnist_file, monkeypatch, capsys):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    storage = f"sqlite:///{tmp_path}/optuna.db"
    params_file = write_params(tmp_path, mnist_file, storage)
    study = optuna.create_study(study_name="cvae-cli", storage=storage, directions=["maximize", "minimize"])
    study.enqueue_trial(STUDY_CVAE)
    study.enqueue_trial(COSTLY)  # pruned before training
    study.enqueue_trial(IMPOSSIBLE)

    argv = [
        "--params",
        str(params_file),
        "tune",
        "--model",
        "cvae",
        "--trials",
        "3",
        "--study-name",
        "cvae-cli",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert (
        "tune: study 'cvae-cli'" in out
        and "tune: Pareto front (validation ELBO against MFLOP per image)" in out
    )

    trials = optuna.load_study(study_name="cvae-cli", storage=storage).trials
    assert [t.state.name for t in trials] == ["COMPLETE", "PRUNED", "FAIL"]
    assert "ArchitectureError" in trials[2].user_attrs["fail_reason"]
    assert "not to 28x28" in trials[2].user_attrs["fail_reason"]
    assert np.isfinite(trials[0].values[0]) and trials[0].values[0] < 0  # an ELBO in nats per image
    assert trials[1].user_attrs["prune_reason"].startswith("over the training cost cap before training")
    assert trials[1].user_attrs["mflop_per_image"] > 8 * trials[0].values[1]

    tuned = yaml.safe_load((tmp_path / "params_tuned.yaml").read_text())["cvae_tuned"]
    assert tuned["architecture"] == {
        "latent_dim": 2,
        "channels": [16, 32],
        "kernel_size": 3,
        "stride": 2,
        "padding": 1,
        "output_padding": 1,
        "hidden": [],
        "decoder": "bernoulli",  # tuned on the Bernoulli ELBO, recorded with the architecture
    }
    assert tuned["lr"] == 1e-3
    params = parse_params(yaml.safe_load(params_file.read_text()))
    client = MlflowClient(params.tracking.uri)
    experiment = client.get_experiment_by_name(params.tracking.experiment)
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert sorted(r.data.tags["optuna.state"] for r in children) == ["COMPLETE", "FAIL", "PRUNED"]


def test_cli_rejects_bad_trial_count(capsys):
    with pytest.raises(SystemExit):
        main(["tune", "--model", "cvae", "--trials", "0"])
    assert "--trials: must be > 0, got 0" in capsys.readouterr().err


def test_two_workers_share_a_postgresql_study_exactly(tmp_path, mnist_file, postgres_url, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    params = parse_params(yaml.safe_load(write_params(tmp_path, mnist_file, postgres_url).read_text()))
    task = DensityTask("vae", params)
    summary = tune(params, task, Overrides(trials=6, workers=2), project_dir=tmp_path)

    # A bare postgresql:// URL works with the installed driver (psycopg2).
    study = optuna.load_study(study_name=params.tuning.vae.study_name, storage=resolve_storage(postgres_url))
    trials = study.trials
    assert sorted(t.number for t in trials) == list(range(6))  # none lost, none duplicated
    assert all(t.state.is_finished() for t in trials)
    assert summary["trials"] == 6
    client = MlflowClient(params.tracking.uri)
    runs = {t.user_attrs["mlflow_run_id"]: t.number for t in trials}
    assert len(runs) == 6
    workers = {client.get_run(run_id).data.tags["pml_ops.worker"] for run_id in runs}
    assert len(workers) == 2
    for run_id, number in runs.items():
        run = client.get_run(run_id)
        assert run.data.tags["optuna.trial"] == str(number)
        assert run.data.tags["mlflow.parentRunId"] == summary["mlflow_study_run"]


def test_reference_times_the_models_own_architecture(tmp_path, mnist_file):
    params = parse_params(
        yaml.safe_load(write_params(tmp_path, mnist_file, "sqlite:///unused.db").read_text())
    )
    assert DensityTask("cvae", params).reference_seconds_per_epoch() > 0


def test_cost_is_the_closed_form_flop_count_of_a_training_step():
    """An MLP VAE's matmuls, counted by hand: each Linear(i, o) costs 2io FLOPs per image forward,
    2io for its weight gradient and 2io for its input gradient, except the first layer (the
    images need no gradient). Nothing else (activations, the ELBO's sums) is counted."""
    hidden = 64
    layers = [(784, hidden), (hidden, 2), (hidden, 2), (2, hidden), (hidden, 784)]
    expected = (sum(6 * i * o for i, o in layers) - 2 * 784 * hidden) / 1e6
    model = build_model(MlpVaeArchitecture(latent_dim=2, hidden=[hidden]), seed=0)
    assert training_mflop_per_image(model) == pytest.approx(expected, rel=1e-9)


def test_cost_of_the_study_cvae_is_its_own_reference(tmp_path, mnist_file):
    params = parse_params(
        yaml.safe_load(write_params(tmp_path, mnist_file, "sqlite:///unused.db").read_text())
    )
    task = DensityTask("cvae", params)
    assert task.cost(STUDY_CVAE) == task.cost(None) > 0
    assert task.cost(COSTLY) > 100 * task.cost(None)


def test_trial_over_its_time_budget_is_pruned_after_an_epoch(tmp_path, mnist_file):
    raw = yaml.safe_load(write_params(tmp_path, mnist_file, "sqlite:///unused.db").read_text())
    raw["tuning"]["trial"]["max_seconds"] = 1e-6
    evaluate = DensityTask("cvae", parse_params(raw)).prepare()
    epochs = []
    with pytest.raises(optuna.TrialPruned, match=r"over the per-trial time budget: .* after epoch 1"):
        evaluate(STUDY_CVAE, lambda epoch, value: epochs.append((epoch, value)))
    assert [epoch for epoch, _ in epochs] == [1]  # the epoch is reported before stopping
