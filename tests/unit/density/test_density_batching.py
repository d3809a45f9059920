"""Scoring passes sized by a memory budget: the per-row byte estimate against a hand count, the
batch sizes it gives, and the IWAE of a wide decoder staying near a small budget."""

from __future__ import annotations

import threading

import numpy as np
import psutil
import pytest
import torch

from pml_ops.config import ConvVaeArchitecture, MlpVaeArchitecture, TrainingParams
from pml_ops.density.batching import (
    FLOAT_BYTES,
    LIKELIHOOD_TENSORS,
    decoder_bytes_per_sample,
    encoder_bytes_per_image,
    rows_within,
)
from pml_ops.density.models.vae import VaeModel

MLP = MlpVaeArchitecture(latent_dim=2, hidden=[400, 100])
# Stride 1 keeps every decoder layer at 28x28: ~0.5 MB of activations per latent sample.
WIDE_CONV = ConvVaeArchitecture(
    latent_dim=2, channels=[32, 32], kernel_size=3, stride=1, padding=1, output_padding=0, hidden=[]
)
TRAINING = TrainingParams(epochs=1, batch_size=8, lr=1e-3)


def _model(arch, budget_mib: float) -> VaeModel:
    model = VaeModel("m", "cvae", arch, TRAINING, 0, torch.device("cpu"), budget_mib)
    model.module_ = model.build().eval()
    return model


def test_bytes_per_row_match_a_hand_count_of_the_study_vae():
    module = _model(MLP, 1).module
    # decoder: Linear 100, ReLU 100, Linear 400, ReLU 400, Linear 784, Unflatten 784
    decoder = 100 + 100 + 400 + 400 + 784 + 784 + LIKELIHOOD_TENSORS * 784
    # encoder: Flatten 784, Linear 400, ReLU 400, Linear 100, ReLU 100, two heads of 2; the image
    encoder = 784 + 400 + 400 + 100 + 100 + 2 + 2 + 784
    assert decoder_bytes_per_sample(module) == FLOAT_BYTES * decoder
    assert encoder_bytes_per_image(module) == FLOAT_BYTES * encoder


def test_rows_within_budget():
    assert rows_within(1000, 100) == 10
    assert rows_within(99, 100) == 1  # one row always runs, however large
    wide = _model(WIDE_CONV, 16)
    per_sample = decoder_bytes_per_sample(wide.module)
    assert per_sample > 400_000  # the wide decoder writes 28x28x32 floats several times
    images = wide._rows(wide.module, encoder=True, decoder=True, samples=1000)
    assert images == 1  # K = 1000 samples of one image exceed 16 MiB: split over passes


def _peak_rss_growth(work) -> float:
    """Peak RSS above the level before `work()`, in MiB, sampled every millisecond."""
    process = psutil.Process()
    before = process.memory_info().rss
    peak, done = before, threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, process.memory_info().rss)
            done.wait(0.001)

    thread = threading.Thread(target=sample)
    thread.start()
    try:
        work()
    finally:
        done.set()
        thread.join()
    return (peak - before) / 2**20


@pytest.mark.timeout(300)
def test_iwae_of_a_wide_decoder_stays_near_a_small_budget():
    images = np.random.default_rng(0).random((3, 784)).astype(np.float32)
    k = 256  # 768 samples x ~0.6 MB: ~460 MB of activations if decoded at once (measured: 27 MiB
    # growth under the budget, 111 MiB at K = 128 unbatched)
    small = _model(WIDE_CONV, 8)
    assert k * 3 * decoder_bytes_per_sample(small.module) > 400 * 2**20
    samples = rows_within(small.memory_budget_bytes, decoder_bytes_per_sample(small.module))
    assert samples * decoder_bytes_per_sample(small.module) <= small.memory_budget_bytes
    growth = _peak_rss_growth(lambda: small.iwae(images, k, seed=0))
    assert growth < 80, f"IWAE grew RSS by {growth:.0f} MiB under an 8 MiB activation budget"
    # The budget changes how the work is split, not what the bound is for one image.
    one_pass = _model(WIDE_CONV, 4096)
    for i in range(len(images)):
        np.testing.assert_allclose(
            small.iwae(images[i : i + 1], 16, seed=i), one_pass.iwae(images[i : i + 1], 16, seed=i), rtol=1e-5
        )
