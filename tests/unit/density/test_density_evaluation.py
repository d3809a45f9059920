"""Table 1's metrics: the same images for every column, standard errors, bits/dim where they apply."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pml_ops.config import EvaluateParams, MlpVaeArchitecture, TrainingParams
from pml_ops.density import families
from pml_ops.density.evaluation import comparison_rows, evaluate_model
from pml_ops.density.models.ppca import PPCA
from pml_ops.density.models.vae import VaeModel
from pml_ops.density.units import bits_per_dim, dequantise
from pml_ops.report.density_table import comparison_markdown

PARAMS = EvaluateParams(
    iwae_samples=4,
    iwae_images=6,
    memory_budget_mib=64.0,
    dequantisation_seed=0,
    knn_neighbors=1,
    grid_size=2,
    grid_span=1.0,
    n_reconstructions=2,
    samples_per_component=2,
)


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (30, 28, 28), dtype=np.uint8)
    return x, rng.integers(0, 3, 30)


def vae(decoder: str) -> VaeModel:
    arch = MlpVaeArchitecture(latent_dim=2, hidden=[8], decoder=decoder)
    model = VaeModel(
        "v", "vae", arch, TrainingParams(epochs=1, batch_size=8, lr=1e-3), 0, torch.device("cpu")
    )
    model.module_ = model.build().eval()
    return model


def test_every_column_on_the_same_images_with_errors(images):
    x, y = images
    unit = x.reshape(30, -1).astype(np.float32) / 255
    deq = dequantise(x, 0)
    bern = evaluate_model(vae("bernoulli"), unit[:20], y[:20], unit[20:], y[20:], PARAMS, 0, deq[20:])
    assert bern["test_images"] == 10 and bern["subset_images"] == bern["iwae_images"] == 6
    assert bern["subset_score"] == pytest.approx(float(np.mean(vae("bernoulli").log_density(unit[20:])[:6])))
    assert bern["iwae_gap"] == pytest.approx(bern["test_iwae"] - bern["subset_score"])
    assert bern["test_score_mc_se"] > 0 and bern["test_iwae_mc_se"] > 0 and bern["test_score_se"] > 0
    assert "bits_per_dim" not in bern and bern["normalised"] is False

    cb = evaluate_model(
        vae("continuous_bernoulli"), unit[:20], y[:20], unit[20:], y[20:], PARAMS, 0, deq[20:]
    )
    assert cb["normalised"] is True and cb["bits_per_dim_se"] > 0 and cb["bits_per_dim_mc_se"] > 0
    assert "test_iwae" not in cb and "iwae_gap" not in cb  # its IWAE runs only at the dequantised points
    log_p = vae("continuous_bernoulli").iwae(deq[20:26], 4, seed=0)
    assert cb["bits_per_dim"] == pytest.approx(float(np.mean(bits_per_dim(log_p, 784))))

    ppca = PPCA(2).fit_pixels(unit[:20])
    exact = evaluate_model(ppca, unit[:20], y[:20], unit[20:], y[20:], PARAMS, 0, deq[20:])
    assert exact["bits_per_dim"] == pytest.approx(
        float(np.mean(bits_per_dim(ppca.log_density(deq[20:26]), 784)))
    )
    assert "test_score_mc_se" not in exact and exact["test_knn_accuracy_se"] >= 0

    notes = [families.family(name).note for name in ("vae", "ppca")]  # how each family scores
    table = comparison_markdown(comparison_rows({}, {"vae": bern, "vae_cb": cb, "ppca": exact}), notes)
    assert "[bits/dim]" in table and "[nats/image]" in table and "not a density" in table
    assert "Normalised densities: ppca (exact) and v (bounds); v is not, and has no bits/dim." in table
    assert all(f". {note}. " in table for note in notes)
    assert f"{exact['bits_per_dim']:.4f} ± {exact['bits_per_dim_se']:.4f}" in table
