"""A variational autoencoder with a N(0, I) prior, Gaussian posterior and Bernoulli decoder.

The encoder maps images (N, 1, 28, 28) to the posterior mean and log-variance; the decoder maps
latents to Bernoulli logits (N, 1, 28, 28). Pixel intensities in [0, 1] are used directly as
Bernoulli targets (binary cross-entropy with continuous targets), as the study did, so the ELBO is
in nats per image under that (improper for non-binary pixels) observation model.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class VAE(nn.Module):
    def __init__(self, encoder: nn.Module, decoder: nn.Module, latent_dim: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.latent_dim = latent_dim

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(z|x), each (N, latent_dim)."""
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Decoder means (Bernoulli probabilities) for latents z, shape (N, 1, 28, 28)."""
        return torch.sigmoid(self.decoder(z))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Deterministic reconstruction: the decoder mean at the posterior mean (for serving)."""
        return self.decode(self.posterior(x)[0])

    def elbo(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Single-sample reparameterised ELBO per image (N,), analytic KL to N(0, I)."""
        mean, logvar = self.posterior(x)
        eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        z = mean + torch.exp(0.5 * logvar) * eps
        logits = self.decoder(z)
        log_lik = -F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)
        kl = 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).sum(1)
        return log_lik - kl

    def iwae(
        self,
        x: torch.Tensor,
        k: int,
        generator: torch.Generator | None = None,
        samples_per_pass: int | None = None,
    ) -> torch.Tensor:
        """Importance-weighted bound log (1/K) sum_k p(x, z_k) / q(z_k|x) per image (N,).

        The encoder runs once per image; the K x N latent samples go through the decoder in
        passes of at most `samples_per_pass` (all at once when None), which bounds memory
        without changing the result (the noise is drawn once, up front). K = 1 is an unbiased
        single-sample ELBO; the bound does not decrease in expectation as K grows and tends to
        log p(x).
        """
        mean, logvar = self.posterior(x)
        std = torch.exp(0.5 * logvar)
        n, d = mean.shape
        eps = torch.randn((k, n, d), generator=generator, device=mean.device, dtype=mean.dtype)
        step = k if samples_per_pass is None else max(1, samples_per_pass // n)
        log_w = torch.empty((k, n), device=mean.device, dtype=mean.dtype)
        for first in range(0, k, step):
            e = eps[first : first + step]
            z = mean + std * e  # (k', N, D)
            logits = self.decoder(z.reshape(-1, d)).reshape(len(e), n, -1)
            target = x.reshape(1, n, -1).expand(len(e), n, -1)
            log_lik = -F.binary_cross_entropy_with_logits(logits, target, reduction="none").sum(-1)
            log_prior = -0.5 * (z.pow(2) + math.log(2 * math.pi)).sum(-1)
            log_q = -0.5 * (e.pow(2) + math.log(2 * math.pi) + logvar).sum(-1)
            log_w[first : first + len(e)] = log_lik + log_prior - log_q
        return torch.logsumexp(log_w, dim=0) - math.log(k)
