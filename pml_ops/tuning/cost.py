"""A trial's cost, the study's second objective: training FLOPs per image.

Counted by torch's FlopCounterMode (matrix multiplications and convolutions) over one training
step, the forward and backward pass of the negative ELBO, on a small batch of blank images: it
depends on the layer shapes only, so it is the same on every worker, machine and load, where
seconds per epoch move with whatever else runs.
"""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from pml_ops.density.architectures import IMAGE_SIDE
from pml_ops.density.autoencoder import VAE

COUNT_BATCH = 2  # images per counted step (FLOPs scale linearly with the batch)


def training_mflop_per_image(model: VAE) -> float:
    """MFLOP of one training step per image (forward and backward of the negative mean ELBO)."""
    images = torch.zeros(COUNT_BATCH, 1, IMAGE_SIDE, IMAGE_SIDE)
    with FlopCounterMode(display=False) as counter:
        (-model.elbo(images).mean()).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / COUNT_BATCH / 1e6
