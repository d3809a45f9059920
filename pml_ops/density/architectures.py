"""Build VAE encoders/decoders from the `vae.architecture` / `cvae.architecture` params.

`build_model` is the entry point for stages and for tuning: it checks the architecture first and
raises `ArchitectureError` (a `ConfigError`) naming the offending setting, before any weights are
allocated.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from pml_ops.config import ConvVaeArchitecture, MlpVaeArchitecture
from pml_ops.core.errors import ArchitectureError
from pml_ops.density.autoencoder import VAE

IMAGE_SIDE = 28
IMAGE_PIXELS = IMAGE_SIDE * IMAGE_SIDE
INFERENCE_CHUNK = 128  # samples per im2col deconvolution call (FastConvTranspose2d)


class _GaussianHeads(nn.Module):
    """Features -> (posterior mean, log-variance)."""

    def __init__(self, body: nn.Module, features: int, latent_dim: int) -> None:
        super().__init__()
        self.body = body
        self.mean = nn.Linear(features, latent_dim)
        self.logvar = nn.Linear(features, latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x)
        return self.mean(h), self.logvar(h)


class FastConvTranspose2d(nn.ConvTranspose2d):
    """`nn.ConvTranspose2d` (same parameters and state dict) with the faster CPU kernel for its
    shape, measured at 1 and 2 threads (docs/results.md, Compute).

    oneDNN's deconvolution is slow when it writes a single channel (the decoder's last layer, in
    every architecture): there PyTorch's own im2col kernel (`slow_conv_transpose2d`, which has
    its own backward) is 1.9-2.7x faster for a training batch and 2.2-4x in inference, where it is
    fed `INFERENCE_CHUNK` samples at a time (2x faster per sample than one large batch). Wider
    layers run oneDNN, on a channels-last copy of the input in inference (1.4x faster there,
    slower in training). Every kernel agrees with the default one to float rounding (~1e-6).
    """

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        if x.device.type != "cpu" or x.dim() != 4:
            return super().forward(x, output_size)
        inference = torch.is_inference_mode_enabled()
        if self.out_channels > 1:
            layout = torch.channels_last if inference else torch.contiguous_format
            return super().forward(x.contiguous(memory_format=layout), output_size)
        k, s, d = list(self.kernel_size), list(self.stride), list(self.dilation)
        p = [int(side) for side in self.padding]  # a tuple of ints for every layer built here
        op = self._output_padding(x, output_size, s, p, k, 2, d)
        deconvolve = torch.ops.aten.slow_conv_transpose2d
        x = x.contiguous()  # the layer before may be channels-last
        if not inference:
            return deconvolve(x, self.weight, k, self.bias, s, p, op, d)
        return torch.cat(
            [deconvolve(c, self.weight, k, self.bias, s, p, op, d) for c in x.split(INFERENCE_CHUNK)]
        )


def _mlp(widths: list[int]) -> list[nn.Module]:
    """Linear + ReLU for each consecutive pair of widths."""
    layers: list[nn.Module] = []
    for n_in, n_out in itertools.pairwise(widths):
        layers += [nn.Linear(n_in, n_out), nn.ReLU()]
    return layers


def build_mlp_vae(arch: MlpVaeArchitecture) -> VAE:
    hidden = list(arch.hidden)
    encoder = _GaussianHeads(
        nn.Sequential(nn.Flatten(), *_mlp([IMAGE_PIXELS, *hidden])), hidden[-1], arch.latent_dim
    )
    decoder = nn.Sequential(
        *_mlp([arch.latent_dim, *reversed(hidden)]),
        nn.Linear(hidden[0], IMAGE_PIXELS),
        nn.Unflatten(1, (1, IMAGE_SIDE, IMAGE_SIDE)),
    )
    return VAE(encoder, decoder, arch.latent_dim, arch.decoder)


def conv_sides(arch: ConvVaeArchitecture, side: int = IMAGE_SIDE) -> tuple[list[int], list[int]]:
    """Spatial sides through the encoder (input first) and back through the decoder (output last).

    Raises ArchitectureError when a layer would shrink the image to nothing, when PyTorch would
    reject the transposed convolution, or when the decoder does not return to `side` x `side`.
    """
    k, s, p, op = arch.kernel_size, arch.stride, arch.padding, arch.output_padding
    setting = f"cvae.architecture (kernel_size={k}, stride={s}, padding={p}, output_padding={op})"
    if op >= s:
        raise ArchitectureError(f"{setting}: output_padding must be smaller than stride")
    if 2 * p >= k + side:
        raise ArchitectureError(f"{setting}: padding is too large for the kernel")
    down = [side]
    for layer in range(len(arch.channels)):
        nxt = (down[-1] + 2 * p - k) // s + 1
        if nxt < 1:
            raise ArchitectureError(
                f"{setting}: encoder layer {layer + 1} maps a {down[-1]}x{down[-1]} input to nothing"
            )
        down.append(nxt)
    up = [down[-1]]
    for _ in arch.channels:
        up.append((up[-1] - 1) * s - 2 * p + k + op)
    if up != list(reversed(down)):
        raise ArchitectureError(
            f"{setting}: the encoder maps {side}x{side} through sides {down}, but the decoder maps "
            f"{down[-1]}x{down[-1]} back through {up}, not to {side}x{side}"
        )
    return down, up


def build_conv_vae(arch: ConvVaeArchitecture) -> VAE:
    down, _ = conv_sides(arch)
    k, s, p, op = arch.kernel_size, arch.stride, arch.padding, arch.output_padding
    channels = [1, *arch.channels]
    conv: list[nn.Module] = []
    for c_in, c_out in itertools.pairwise(channels):
        conv += [nn.Conv2d(c_in, c_out, k, stride=s, padding=p), nn.ReLU()]
    side = down[-1]
    flat = channels[-1] * side * side
    hidden = list(arch.hidden)
    features = hidden[-1] if hidden else flat
    encoder = _GaussianHeads(
        nn.Sequential(*conv, nn.Flatten(), *_mlp([flat, *hidden])), features, arch.latent_dim
    )
    deconv: list[nn.Module] = []
    reversed_channels = list(reversed(channels))
    for i, (c_in, c_out) in enumerate(itertools.pairwise(reversed_channels)):
        deconv.append(FastConvTranspose2d(c_in, c_out, k, stride=s, padding=p, output_padding=op))
        if i < len(reversed_channels) - 2:
            deconv.append(nn.ReLU())
    decoder = nn.Sequential(
        *_mlp([arch.latent_dim, *reversed(hidden), flat]),
        nn.Unflatten(1, (channels[-1], side, side)),
        *deconv,
    )
    return VAE(encoder, decoder, arch.latent_dim, arch.decoder)


def build_model(arch: MlpVaeArchitecture | ConvVaeArchitecture, seed: int) -> VAE:
    """The VAE an architecture config describes, with weights initialised from `seed`
    (the global torch RNG is left untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if isinstance(arch, MlpVaeArchitecture):
            return build_mlp_vae(arch)
        if isinstance(arch, ConvVaeArchitecture):
            return build_conv_vae(arch)
    raise ArchitectureError(f"unknown architecture config {type(arch).__name__}")
