#!/bin/sh
# A database of its own for MLflow's users and permissions (its basic-auth app), beside
# MLflow's runs and registry, owned by the same role and closed to every other one; made
# where missing (Compose's postgres-setup job runs this at every start).
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<'SQL'
SELECT 'CREATE DATABASE mlflow_auth'
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'mlflow_auth') \gexec
REVOKE ALL ON DATABASE mlflow_auth FROM PUBLIC;
SQL
