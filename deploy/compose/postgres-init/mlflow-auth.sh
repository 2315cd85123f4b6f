#!/bin/sh
# Runs once, when PostgreSQL's volume is first initialized: a database of its own for
# MLflow's users and permissions (its basic-auth app), beside MLflow's runs and registry,
# owned by the same role and closed to every other one.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<'SQL'
CREATE DATABASE mlflow_auth;
REVOKE ALL ON DATABASE mlflow_auth FROM PUBLIC;
SQL
