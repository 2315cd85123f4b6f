#!/bin/sh
# The ingest catalog's own role and database, made where missing; the role's password is
# set from the ingest_catalog_password secret on every run, so a rotated secret takes
# effect at the next start (Compose's postgres-setup job runs this each time). The role
# owns only its database and cannot connect to MLflow's.
set -eu
psql -v ON_ERROR_STOP=1 -v password="$INGEST_CATALOG_PASSWORD" \
  --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<'SQL'
SELECT 'CREATE ROLE ingest LOGIN'
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ingest') \gexec
SELECT format('ALTER ROLE ingest LOGIN PASSWORD %L', :'password') \gexec
SELECT 'CREATE DATABASE ingest_catalog OWNER ingest'
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'ingest_catalog') \gexec
REVOKE ALL ON DATABASE ingest_catalog FROM PUBLIC;
REVOKE ALL ON DATABASE mlflow FROM PUBLIC;
SQL
