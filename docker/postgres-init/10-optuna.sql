-- Runs once, when the PostgreSQL volume is first initialised. POSTGRES_DB (compose.yaml) creates
-- `mlflow`, the MLflow backend store; Optuna's studies live in a database of their own.
CREATE DATABASE optuna;
-- The users and permissions of MLflow's basic-auth app (PML_OPS_MLFLOW_AUTH=basic).
CREATE DATABASE mlflow_auth;
