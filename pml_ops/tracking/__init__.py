"""Tracking and sharing: the MLflow store and its lock (`store`), where a run comes from
(`provenance`), data sets as run inputs (`datasets`), a pipeline's group run (`run_group`), the
model registry's champion rule (`model_registry`), the shared DVC remote (`remote`) and nested
params as MLflow's dotted keys (`params`)."""
