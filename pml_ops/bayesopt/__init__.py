"""Bayesian optimisation of a 1-D black-box function with a fully Bayesian GP (NUTS over the
hyperparameters at every iteration): `acquisition` (EI, LCB, Thompson sampling), `loop` (the
optimisation loop), `peer` (Optuna's GPSampler on the same budget) and `plots`."""
