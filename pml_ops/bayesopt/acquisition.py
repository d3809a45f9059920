"""Acquisition functions for minimisation, as utilities to *maximise* over candidate x.

EI and LCB integrate over the hyperparameter posterior (one predictive per NUTS draw);
Thompson sampling draws one hyperparameter sample and one joint function path per iteration.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm

from pml_ops.gp.predict import Predictive


def expected_improvement(mean: np.ndarray, variance: np.ndarray, best: float) -> np.ndarray:
    """E[max(best - f, 0)] under N(mean, variance), averaged over the leading (sample) axis:
    (best - mu) Phi(z) + sigma phi(z), z = (best - mu) / sigma."""
    sigma = np.sqrt(np.maximum(variance, 0.0))
    gain = best - mean
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(sigma > 0, gain / sigma, 0.0)
    ei = np.where(sigma > 0, gain * norm.cdf(z) + sigma * norm.pdf(z), np.maximum(gain, 0.0))
    return np.atleast_2d(ei).mean(0)


def lower_confidence_bound(predictive: Predictive, kappa: float) -> np.ndarray:
    """Utility -(mu - kappa * sd) with the mixture mean and sd over the hyperparameter draws."""
    return -(predictive.mixture_mean() - kappa * np.sqrt(predictive.mixture_variance()))
