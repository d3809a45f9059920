"""Bayesian GP regression with an RBF kernel: exact marginal likelihood, NUTS over the
hyperparameters, posterior predictive, ArviZ diagnostics and figures.

One concept per module, in the spirit of `pyro.contrib.gp`:
`objective` (the function to fit), `model` (kernel, marginal likelihood, potential, the plain
Pyro reference model), `predict` (closed-form posterior predictive), `nuts` (Stan's NUTS in numpy; chains
possibly in parallel processes), `diagnostics` (InferenceData, ESS and r_hat) and `plots`.
"""
