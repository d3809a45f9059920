"""Bayesian GP regression with an RBF kernel: exact marginal likelihood, NUTS over the
hyperparameters, posterior predictive, ArviZ diagnostics and figures.

One concept per module, in the spirit of `pyro.contrib.gp`: `model` (kernel and the NUTS target
over the log hyperparameters: marginal likelihood plus priors, with its gradient by hand),
`predict` (closed-form posterior predictive), `diagnostics` (InferenceData, ESS and r_hat),
`figures`, and `from_params` (typed params -> these objects). The sampler is
`pml_ops.inference.nuts`; the objective to fit is a `pml_ops.core.expression.Expression`. The
references the model is tested against (its potential in Pyro's form and the plain
`pyro.contrib.gp` model) are test code: tests/helpers/gp_reference.py.
"""
