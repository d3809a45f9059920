"""Bayesian optimisation of a 1-D black-box function with a fully Bayesian GP (NUTS over the
hyperparameters at every iteration): `acquisition` (EI, LCB, Thompson sampling), `loop` (the
optimisation loop), `figures` and `settings` (typed params -> the loop's settings). Optuna's
GPSampler on the same budget, the peer the loop is compared with, is test code:
tests/helpers/bayesopt_peer.py."""
