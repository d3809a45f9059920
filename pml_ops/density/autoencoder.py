"""A variational autoencoder with a N(0, I) prior, Gaussian posterior and a Bernoulli-type decoder.

The encoder maps images (N, 1, 28, 28) to the posterior mean and log-variance; the decoder maps
latents to logits (N, 1, 28, 28). With `decoder="bernoulli"` (the study's) pixel intensities in
[0, 1] are used directly as Bernoulli targets (binary cross-entropy with continuous targets), so the
ELBO is in nats per image under that (improper for non-binary pixels) observation model. With
`decoder="continuous_bernoulli"` the same logits parameterise the continuous Bernoulli, a
normalised density on [0, 1] per pixel (pml_ops.density.units), so ELBO and IWAE bound log p(x).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from pml_ops.density.units import continuous_bernoulli_log_likelihood, continuous_bernoulli_mean

DECODERS = ("bernoulli", "continuous_bernoulli")


def pixel_log_likelihood(logits: torch.Tensor, x: torch.Tensor, decoder: str) -> torch.Tensor:
    """log p(x | logits) per pixel (same shape) under the decoder's observation model; the
    Bernoulli one as x logits - softplus(logits), the binary cross-entropy in two passes (torch's
    softplus is linear above logit 20, off there by < 2.1e-9 nats per pixel)."""
    if decoder == "continuous_bernoulli":
        return continuous_bernoulli_log_likelihood(logits, x)
    return x * logits - F.softplus(logits)


class VAE(nn.Module):
    def __init__(
        self, encoder: nn.Module, decoder: nn.Module, latent_dim: int, likelihood: str = "bernoulli"
    ) -> None:
        super().__init__()
        if likelihood not in DECODERS:
            raise ValueError(f"decoder must be one of {DECODERS}, got {likelihood!r}")
        self.encoder = encoder
        self.decoder = decoder
        self.latent_dim = latent_dim
        self.likelihood = likelihood

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(z|x), each (N, latent_dim)."""
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Decoder means for latents z, shape (N, 1, 28, 28): the Bernoulli probabilities, or the
        continuous Bernoulli's mean (not its parameter)."""
        logits = self.decoder(z)
        if self.likelihood == "continuous_bernoulli":
            return continuous_bernoulli_mean(logits)
        return torch.sigmoid(logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Deterministic reconstruction: the decoder mean at the posterior mean (for serving)."""
        return self.decode(self.posterior(x)[0])

    def elbo(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Single-sample reparameterised ELBO per image (N,), analytic KL to N(0, I)."""
        mean, logvar = self.posterior(x)
        eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        z = mean + torch.exp(0.5 * logvar) * eps
        logits = self.decoder(z)
        log_lik = pixel_log_likelihood(logits, x, self.likelihood).flatten(1).sum(1)
        kl = 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).sum(1)
        return log_lik - kl

    def log_weights(
        self,
        x: torch.Tensor,
        k: int,
        generator: torch.Generator | None = None,
        samples_per_pass: int | None = None,
    ) -> torch.Tensor:
        """log p(x, z_k) - log q(z_k|x) for K posterior samples per image, shape (K, N).

        The encoder runs once per image; the K x N latent samples go through the decoder in
        passes of at most `samples_per_pass` (all at once when None), which bounds memory
        without changing the result (the noise is drawn once, up front).
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
            log_lik = pixel_log_likelihood(logits, target, self.likelihood).sum(-1)
            log_prior = -0.5 * (z.pow(2) + math.log(2 * math.pi)).sum(-1)
            log_q = -0.5 * (e.pow(2) + math.log(2 * math.pi) + logvar).sum(-1)
            log_w[first : first + len(e)] = log_lik + log_prior - log_q
        return log_w

    def iwae(
        self,
        x: torch.Tensor,
        k: int,
        generator: torch.Generator | None = None,
        samples_per_pass: int | None = None,
    ) -> torch.Tensor:
        """Importance-weighted bound log (1/K) sum_k p(x, z_k) / q(z_k|x) per image (N,).

        K = 1 is an unbiased single-sample ELBO; the bound does not decrease in expectation as K
        grows and tends to log p(x).
        """
        return torch.logsumexp(self.log_weights(x, k, generator, samples_per_pass), dim=0) - math.log(k)


def iwae_mc_variance(log_w: torch.Tensor) -> torch.Tensor:
    """Monte Carlo variance of the IWAE estimate log mean_k w_k per image, from its log-weights
    (K, N), by the delta method: Var[log mean w] ~ Var[w] / (K E[w]^2), both moments estimated from
    the same K weights (relative to the largest, so nothing overflows)."""
    k = log_w.shape[0]
    w = torch.exp(log_w - log_w.max(0).values)
    ratio = k * w.pow(2).sum(0) / w.sum(0).pow(2) - 1.0  # Var[w] / E[w]^2 (population moments)
    return ratio / k
