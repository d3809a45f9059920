"""Bayesian GP regression: exact marginal likelihood, NUTS over the kernel's hyperparameters,
posterior predictive, ArviZ diagnostics and figures.

One concept per module, in the spirit of `pyro.contrib.gp`: `kernels` (one kernel per module,
sums and products, built from params.yaml's expression), `model` (marginal likelihood and the
NUTS target over the log hyperparameters), `predict` (closed-form posterior
predictive), `diagnostics` (InferenceData, ESS and r_hat), `figures`, and `from_params` (typed
params -> these objects). The sampler is `pml_ops.inference.nuts`; the objective to fit is a
`pml_ops.core.expression.Expression`. The references the model is
tested against (the plain `pyro.contrib.gp` model) are test code: tests/helpers/gp_reference.py.
"""
