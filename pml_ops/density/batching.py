"""Batch sizes from a memory budget in bytes: how many images (or latent samples) one forward
pass may hold, whatever the architecture.

The cost of one row is measured on the network itself: a forward pass of one image (encoder) or
one latent (decoder) with hooks that add up the elements every layer writes. Summing all layers
over-counts (inference frees each activation once the next layer has read it), which keeps the
estimate on the safe side; the Bernoulli log-likelihood's own per-pixel tensors are added.
"""

from __future__ import annotations

import torch
from torch import nn

from pml_ops.density.architectures import IMAGE_PIXELS, IMAGE_SIDE
from pml_ops.density.autoencoder import VAE

FLOAT_BYTES = 4
LIKELIHOOD_TENSORS = 3  # logits reshaped, the expanded target, the elementwise BCE


def _written_elements(module: nn.Module, x: torch.Tensor) -> int:
    """Elements written by every leaf layer of `module` on input `x`, inputs copied for a
    channels-last layout included."""
    total = 0

    def count(layer: nn.Module, inputs: tuple[torch.Tensor, ...], output: object) -> None:
        nonlocal total
        outputs = output if isinstance(output, tuple) else (output,)
        total += sum(t.numel() for t in outputs if isinstance(t, torch.Tensor))
        if isinstance(layer, nn.ConvTranspose2d):
            total += inputs[0].numel()

    leaves = [m for m in module.modules() if not list(m.children())]
    handles = [leaf.register_forward_hook(count) for leaf in leaves]
    try:
        with torch.inference_mode():
            module(x)
    finally:
        for handle in handles:
            handle.remove()
    return total


def decoder_bytes_per_sample(model: VAE) -> int:
    """Bytes one latent sample costs in a decoder pass plus its Bernoulli log-likelihood."""
    device = next(model.parameters()).device
    z = torch.zeros(1, model.latent_dim, device=device)
    return FLOAT_BYTES * (_written_elements(model.decoder, z) + LIKELIHOOD_TENSORS * IMAGE_PIXELS)


def encoder_bytes_per_image(model: VAE) -> int:
    """Bytes one image costs in an encoder pass (the image itself included)."""
    device = next(model.parameters()).device
    x = torch.zeros(1, 1, IMAGE_SIDE, IMAGE_SIDE, device=device)
    return FLOAT_BYTES * (_written_elements(model.encoder, x) + IMAGE_PIXELS)


def rows_within(budget_bytes: int, bytes_per_row: int) -> int:
    """How many rows of `bytes_per_row` fit in `budget_bytes` (at least one)."""
    return max(1, budget_bytes // max(1, bytes_per_row))
