#!/bin/sh
# Runs once, when PostgreSQL's volume is first initialized (the image runs every script
# in /docker-entrypoint-initdb.d): the ingest catalog's own role and database. The role
# owns only its database and cannot connect to MLflow's. The password comes from the
# ingest_catalog_password secret, exported by the service's entrypoint.
set -eu
psql -v ON_ERROR_STOP=1 -v password="$INGEST_CATALOG_PASSWORD" \
  --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<'SQL'
CREATE ROLE ingest LOGIN PASSWORD :'password';
CREATE DATABASE ingest_catalog OWNER ingest;
REVOKE ALL ON DATABASE ingest_catalog FROM PUBLIC;
REVOKE ALL ON DATABASE mlflow FROM PUBLIC;
SQL
