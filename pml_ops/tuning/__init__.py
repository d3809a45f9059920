"""Optuna tuning of the density models' architectures.

A study is a `TuningTask` (how to sample a configuration, how to train and score it) run by
`run_study` over a shared Optuna storage, with one MLflow run per trial nested under the
study's run. Small modules, one concept each:

- `space`: search-space specs from params.yaml -> `trial.suggest_*`
- `storage`: storage URLs (embedded SQLite or any RDB URL) and opening them safely
- `cost`: a trial's cost, training FLOPs per image (the second objective)
- `task`: the `TuningTask` protocol and the per-trial runner (pruning, failures, MLflow)
- `study`: creating/continuing a study and spreading its trials over worker processes
- `figures`: the study's figures (optimisation history, importances, parallel coordinates, Pareto front)
- `report`: the study summary, its Pareto front and the best-params file
"""
