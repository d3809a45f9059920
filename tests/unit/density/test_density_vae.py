"""VAE/CVAE construction, ELBO and IWAE against independent estimates, training errors, resume."""

from __future__ import annotations

import contextlib
import math
import signal

import numpy as np
import pytest
import torch
from torch import distributions as D

from pml_ops.config import ConvVaeArchitecture, MlpVaeArchitecture, TrainingParams
from pml_ops.core.errors import ArchitectureError, ConfigError, NonFiniteLossError
from pml_ops.density.architectures import INFERENCE_CHUNK, build_model, conv_sides
from pml_ops.density.data import train_validation_split
from pml_ops.density.training import train_vae
from pml_ops.runtime import stage

STUDY_CONV = dict(
    latent_dim=2, channels=[16, 32], kernel_size=3, stride=2, padding=1, output_padding=1, hidden=[]
)
SMALL_MLP = MlpVaeArchitecture(latent_dim=2, hidden=[32, 16])


def _images(n: int, seed: int = 0) -> torch.Tensor:
    return torch.rand((n, 1, 28, 28), generator=torch.Generator().manual_seed(seed))


def test_study_architectures_have_the_described_shapes():
    vae = build_model(MlpVaeArchitecture(latent_dim=2, hidden=[400, 100]), seed=0)
    linear = [m for m in vae.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear] == [
        (784, 400), (400, 100), (100, 2), (100, 2), (2, 100), (100, 400), (400, 784)
    ]  # fmt: skip
    cvae = build_model(ConvVaeArchitecture(**STUDY_CONV), seed=0)
    assert conv_sides(ConvVaeArchitecture(**STUDY_CONV)) == ([28, 14, 7], [7, 14, 28])
    mean, logvar = cvae.posterior(_images(3))
    assert mean.shape == logvar.shape == (3, 2)
    assert cvae.decode(torch.zeros(4, 2)).shape == (4, 1, 28, 28)
    assert cvae.encoder.mean.in_features == 32 * 7 * 7


def test_same_seed_same_weights_and_global_rng_untouched():
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a, b = build_model(SMALL_MLP, seed=5), build_model(SMALL_MLP, seed=5)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (dict(kernel_size=4), r"decoder maps 7x7 back through \[7, 15, 31\], not to 28x28"),
        (dict(output_padding=2), "output_padding must be smaller than stride"),
        (dict(channels=[4, 4, 4], kernel_size=5, padding=0), "encoder layer 3 maps a 4x4 input to nothing"),
    ],
)
def test_impossible_conv_architecture_is_a_clear_error(change, message):
    arch = ConvVaeArchitecture(**{**STUDY_CONV, **change})
    with pytest.raises(ArchitectureError, match=message) as info:
        build_model(arch, seed=0)
    assert isinstance(info.value, ConfigError)
    assert "cvae.architecture" in str(info.value)


def test_other_working_conv_geometry_builds():
    arch = ConvVaeArchitecture(**{**STUDY_CONV, "kernel_size": 5, "padding": 2, "hidden": [64]})
    model = build_model(arch, seed=0)
    assert model.decode(torch.zeros(2, 2)).shape == (2, 1, 28, 28)


def _transposed_convolution_by_definition(x: np.ndarray, layer: torch.nn.ConvTranspose2d) -> np.ndarray:
    """y[n, o, s*i - p + a, s*j - p + b] += x[n, c, i, j] w[c, o, a, b], in float64."""
    (k, _), (s, _), (p, _), (op, _) = layer.kernel_size, layer.stride, layer.padding, layer.output_padding
    w = layer.weight.detach().double().numpy()
    n, _, side, _ = x.shape
    full = (side - 1) * s + k + op
    y = np.zeros((n, layer.out_channels, full, full))
    for a in range(k):
        for b in range(k):
            contribution = np.einsum("ncij,co->noij", x, w[:, :, a, b])
            y[:, :, a : a + s * (side - 1) + 1 : s, b : b + s * (side - 1) + 1 : s] += contribution
    out = (side - 1) * s - 2 * p + k + op
    return y[:, :, p : p + out, p : p + out] + layer.bias.detach().double().numpy()[None, :, None, None]


@pytest.mark.parametrize(
    "geometry",
    [
        {},
        {"kernel_size": 5, "padding": 2, "stride": 1, "output_padding": 0},
        {"channels": [8], "kernel_size": 7, "padding": 3, "hidden": [16]},  # the tuned CVAE's shape
    ],
)
def test_inference_kernels_give_the_transposed_convolution_by_its_definition(geometry):
    """Under inference mode each transposed convolution runs a faster kernel (channels-last
    oneDNN, or im2col in chunks for the one-channel last layer); every layer must equal the
    definition (float64) within float32 tolerance, over more samples than one chunk."""
    model = build_model(ConvVaeArchitecture(**{**STUDY_CONV, **geometry}), seed=0)
    z = torch.randn(INFERENCE_CHUNK + 5, 2, generator=torch.Generator().manual_seed(1))
    layers = [m for m in model.decoder if isinstance(m, torch.nn.ConvTranspose2d)]
    assert layers[-1].out_channels == 1
    h = z
    with torch.inference_mode():
        for module in model.decoder:
            out = module(h)
            if isinstance(module, torch.nn.ConvTranspose2d):
                expected = _transposed_convolution_by_definition(h.double().numpy(), module)
                np.testing.assert_allclose(out.numpy(), expected, rtol=1e-4, atol=1e-5)
            h = out
    assert model.decoder(z).requires_grad  # training keeps the autograd path


@pytest.mark.parametrize("geometry", [{}, {"channels": [8], "kernel_size": 7, "padding": 3}])
def test_training_kernel_of_the_last_layer_has_the_definitions_output_and_gradients(geometry):
    """In training the one-channel last layer runs the im2col kernel: its output must equal the
    definition and its gradients (input, weight, bias) finite differences, in float64."""
    model = build_model(ConvVaeArchitecture(**{**STUDY_CONV, **geometry}), seed=0)
    last = model.decoder[-1].double()
    assert last.out_channels == 1
    h = torch.randn(3, last.in_channels, 14, 14, dtype=torch.float64, requires_grad=True)
    expected = _transposed_convolution_by_definition(h.detach().numpy(), last)
    np.testing.assert_allclose(last(h).detach().numpy(), expected, rtol=1e-10, atol=1e-12)
    weight, bias = (t.detach().clone().requires_grad_(True) for t in (last.weight, last.bias))

    def layer(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(last, {"weight": w, "bias": b}, (x,))

    assert torch.autograd.gradcheck(layer, (h, weight, bias))


def test_elbo_matches_an_independent_monte_carlo_estimate():
    """Our ELBO (analytic KL) vs log p(x|z) + log p(z) - log q(z|x) with torch.distributions."""
    torch.manual_seed(0)
    model = build_model(SMALL_MLP, seed=1)
    x = _images(4)
    samples = 4000
    with torch.no_grad():
        ours = model.elbo(x.repeat(samples, 1, 1, 1)).reshape(samples, 4).mean(0)
        mean, logvar = model.posterior(x)
        q = D.Normal(mean, torch.exp(0.5 * logvar))
        z = q.sample((samples,))  # (S, N, 2)
        logits = model.decoder(z.reshape(-1, 2)).reshape(samples, 4, -1)
        log_lik = D.Bernoulli(logits=logits, validate_args=False).log_prob(x.reshape(1, 4, -1)).sum(-1)
        prior = D.Normal(torch.zeros(2), torch.ones(2))
        reference = (log_lik + prior.log_prob(z).sum(-1) - q.log_prob(z).sum(-1)).mean(0)
    assert torch.allclose(ours, reference, atol=0.5), (ours, reference)


def test_iwae_k1_is_the_elbo_and_grows_with_k():
    torch.manual_seed(0)
    model = build_model(SMALL_MLP, seed=1)
    x = _images(8)
    reps = 2000
    with torch.no_grad():
        elbo = model.elbo(x.repeat(reps, 1, 1, 1)).reshape(reps, 8).mean(0)
        bounds = {
            k: model.iwae(x.repeat(reps // k, 1, 1, 1), k).reshape(reps // k, 8).mean(0) for k in (1, 10, 100)
        }
    assert torch.allclose(bounds[1], elbo, atol=0.5)
    assert (bounds[10] >= bounds[1] - 0.05).all() and (bounds[100] >= bounds[10] - 0.05).all()
    assert (bounds[100] - bounds[1]).mean() > 0.1  # a real gap on an untrained model


def test_split_is_disjoint_complete_and_seeded():
    train, val = train_validation_split(100, 0.1, seed=3)
    assert len(val) == 10 and len(train) == 90
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(100))
    again = train_validation_split(100, 0.1, seed=3)
    assert np.array_equal(again[1], val)
    assert not np.array_equal(train_validation_split(100, 0.1, seed=4)[1], val)
    with pytest.raises(ConfigError, match="density.validation_fraction"):
        train_validation_split(5, 0.01, seed=0)


TINY = TrainingParams(epochs=3, batch_size=16, lr=1e-3)


def test_non_finite_loss_names_epoch_and_batch():
    images = _images(64)
    images[40] = float("nan")  # batches of 16 in order of a seeded shuffle
    order = torch.randperm(64, generator=torch.Generator().manual_seed(0))
    batch = int((order == 40).nonzero()) // 16 + 1
    with pytest.raises(NonFiniteLossError, match=rf"epoch 1, batch {batch}\b"):
        train_vae(build_model(SMALL_MLP, 0), images, _images(8, 1), TINY, seed=0)


def test_callback_receives_validation_elbo_each_epoch():
    seen = []
    result = train_vae(
        build_model(SMALL_MLP, 0), _images(64), _images(8, 1), TINY, seed=0, on_epoch=seen.append
    )
    assert [s.epoch for s in seen] == [1, 2, 3] and seen == result.history
    assert all(math.isfinite(s.val_elbo) and s.val_elbo < 0 for s in seen)
    assert seen[-1].train_elbo > seen[0].train_elbo  # it learns


@pytest.mark.parametrize("arch", [SMALL_MLP, ConvVaeArchitecture(**{**STUDY_CONV, "channels": [4, 8]})])
def test_fused_adam_trains_like_the_for_loop_adam_within_float_tolerance(arch):
    """The fused kernel is a different implementation of the same update: against torch's
    for-loop Adam (the reference), 3 epochs of 4 steps agree to float32 tolerance."""
    data, val = _images(64), _images(8, 1)
    runs = [
        train_vae(build_model(arch, 0), data, val, TINY.model_copy(update={"fused_adam": fused}), seed=3)
        for fused in (False, True)
    ]
    reference, fused = ([p.detach() for p in run.model.parameters()] for run in runs)
    initial = list(build_model(arch, 0).parameters())
    assert any(not torch.equal(p, q) for p, q in zip(reference, initial, strict=True))  # it trained
    torch.testing.assert_close(fused, reference)
    assert runs[1].history[-1].val_elbo == pytest.approx(runs[0].history[-1].val_elbo, rel=1e-5)


@pytest.mark.parametrize("arch", [SMALL_MLP, ConvVaeArchitecture(**{**STUDY_CONV, "channels": [4, 8]})])
def test_training_adam_is_torchs_for_loop_adam_bit_for_bit(arch, monkeypatch):
    """train_vae's Adam (foreach, for speed) against torch's CPU default, the for-loop
    implementation: 3 epochs of 4 steps give identical weights."""
    trained = train_vae(build_model(arch, 0), _images(64), _images(8, 1), TINY, seed=3).model
    adam = torch.optim.Adam
    monkeypatch.setattr(torch.optim, "Adam", lambda *a, **kw: adam(*a, **{**kw, "foreach": False}))
    reference = train_vae(build_model(arch, 0), _images(64), _images(8, 1), TINY, seed=3).model
    initial = list(build_model(arch, 0).parameters())
    assert any(not torch.equal(p, q) for p, q in zip(trained.parameters(), initial, strict=True))
    for ours, theirs in zip(trained.parameters(), reference.parameters(), strict=True):
        assert torch.equal(ours, theirs)


class _Interrupt(Exception):
    pass


def _stop_after_epoch(n: int):
    def callback(stats):
        if stats.epoch == n:
            raise _Interrupt

    return callback


@pytest.mark.parametrize(
    ("arch", "dequantise"),
    [
        (SMALL_MLP, False),
        (ConvVaeArchitecture(**{**STUDY_CONV, "channels": [4, 8]}), False),
        (SMALL_MLP.model_copy(update={"decoder": "continuous_bernoulli"}), True),
    ],
    ids=["mlp", "conv", "mlp-dequantised"],
)
def test_interrupted_run_resumes_to_identical_weights(tmp_path, arch, dequantise):
    data, val = _images(48), _images(8, 1)
    reference = train_vae(build_model(arch, 0), data, val, TINY, seed=7, dequantise=dequantise).model
    checkpoint = tmp_path / "ckpt.pt"
    with pytest.raises(_Interrupt):
        train_vae(
            build_model(arch, 0),
            data,
            val,
            TINY,
            seed=7,
            checkpoint=checkpoint,
            on_epoch=_stop_after_epoch(1),
            dequantise=dequantise,
        )
    resumed = train_vae(
        build_model(arch, 0), data, val, TINY, seed=7, checkpoint=checkpoint, dequantise=dequantise
    )
    assert resumed.resumed_from_epoch == 1 and [s.epoch for s in resumed.history] == [1, 2, 3]
    for p, q in zip(reference.parameters(), resumed.model.parameters(), strict=True):
        assert torch.equal(p, q)
    # A checkpoint of another configuration is not resumed.
    other = train_vae(build_model(arch, 0), data, val, TINY, seed=8, checkpoint=checkpoint)
    assert other.resumed_from_epoch == 0


def test_dequantised_training_sees_fresh_off_grid_batches(monkeypatch):
    """With `dequantise`, every batch is (k + u) / 256 with new noise each epoch and the validation
    images one fixed dequantisation; without it the model sees the grey levels k/255 unchanged."""
    grey = torch.randint(0, 256, (16, 1, 28, 28), generator=torch.Generator().manual_seed(0)) / 255.0
    seen: list[torch.Tensor] = []
    model = build_model(SMALL_MLP.model_copy(update={"decoder": "continuous_bernoulli"}), 0)
    elbo = model.elbo

    def recording_elbo(x, generator=None):
        seen.append(x.detach().clone())
        return elbo(x, generator)

    monkeypatch.setattr(model, "elbo", recording_elbo)
    training = TrainingParams(epochs=2, batch_size=16, lr=1e-3)
    history = train_vae(model, grey, grey[:4], training, seed=0, dequantise=True).history
    k = torch.round(grey * 255).flatten(1)
    for batch in (seen[0], seen[2]):  # the training batches of epochs 1 and 2 (one each, shuffled)
        cells = torch.floor(batch * 256).flatten(1)
        assert (cells[:, None] == k[None]).all(-1).any(1).all()  # each image within its grey cells
        assert not torch.isin(batch, grey).any()
    assert not torch.equal(seen[0].flatten().sort().values, seen[2].flatten().sort().values)  # fresh noise
    validation = seen[1]  # one fixed dequantisation, the same each epoch
    assert torch.equal(validation, seen[3]) and torch.equal(torch.floor(validation * 256).flatten(1), k[:4])
    assert all(np.isfinite(s.val_elbo) for s in history)

    seen.clear()
    train_vae(model, grey, grey[:4], training, seed=0)
    assert torch.equal(seen[1], grey[:4]) and torch.isin(seen[0], grey).all()


def test_a_lost_stop_ends_training_after_the_epoch_and_its_checkpoint(tmp_path, monkeypatch):
    """A SIGTERM whose exception is swallowed (as in a `__del__`) during epoch 1 stops training
    at the end of that epoch; the checkpoint holds it and a later run resumes from it."""
    data, val, checkpoint = _images(48), _images(8, 1), tmp_path / "ckpt.pt"
    monkeypatch.setattr(stage, "_requested", [])

    def sigterm_lost_in_epoch_1(stats):
        if stats.epoch == 1:
            with contextlib.suppress(KeyboardInterrupt):  # lost, as one raised in a __del__ is
                stage._on_stop_signal(signal.SIGTERM, None)

    with pytest.raises(stage.Stopped):
        model = build_model(SMALL_MLP, 0)
        train_vae(model, data, val, TINY, seed=7, checkpoint=checkpoint, on_epoch=sigterm_lost_in_epoch_1)
    monkeypatch.setattr(stage, "_requested", [])  # a new process: no stop pending
    resumed = train_vae(build_model(SMALL_MLP, 0), data, val, TINY, seed=7, checkpoint=checkpoint)
    assert resumed.resumed_from_epoch == 1 and [s.epoch for s in resumed.history] == [1, 2, 3]
