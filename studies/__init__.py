"""Studies that repeat the pipeline's science over seeds; the report shows their summaries.

- `seed_variation`: Table 1 over seeds (the spread that says which differences are real),
  written to `results/seed_variation.json`
- `bayesopt_study`: the success rate of Bayesian optimisation over seeds, against Optuna's
  GPSampler, written to `results/bayesopt_study.json`

Both are resumable and slow (hours at the study's settings); the `report` stage reads their
committed results and shows none when a file is absent.
"""
