"""The scripts Compose's postgres-setup job runs against PostgreSQL at every start
(deploy/compose/postgres-init), run against a real PostgreSQL the way the job runs them:
the ingest role they create keeps its catalog there with the password from its secret,
and reaches nothing else; MLflow's users get a database of their own. Running them again
changes nothing but a rotated password."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from ingest.catalog import Catalog
from wavepod.duck import AttachError
from wavepod.testing.postgres import postgres_server

# In the order the job's shell glob runs them.
SCRIPTS = sorted(Path("deploy/compose/postgres-init").glob("*.sh"))
SUPERUSER_PASSWORD, FIRST_PASSWORD, ROTATED_PASSWORD = (
    "postgres-secret",
    "ingest-secret",
    "ingest-secret-rotated",
)


def test_the_setup_scripts_give_ingest_its_own_catalog_database_at_every_start() -> None:
    with postgres_server("mlflow", password=SUPERUSER_PASSWORD) as url:
        host, port = url.rsplit("@", 1)[1].split("/", 1)[0].split(":")
        env = {
            **os.environ,
            # What Compose's postgres-setup job gives the scripts.
            "POSTGRES_USER": "postgres",
            "POSTGRES_DB": "mlflow",
            "PGHOST": host,
            "PGPORT": port,
            "PGPASSWORD": SUPERUSER_PASSWORD,
        }
        assert [s.name for s in SCRIPTS] == ["ingest-catalog.sh", "mlflow-auth.sh"]

        def setup(ingest_password: str) -> None:
            for script in SCRIPTS:
                ran = subprocess.run(
                    ["sh", str(script)],
                    env={**env, "INGEST_CATALOG_PASSWORD": ingest_password},
                    capture_output=True,
                    text=True,
                )
                assert ran.returncode == 0, ran.stderr
                assert ingest_password not in ran.stdout + ran.stderr

        setup(FIRST_PASSWORD)
        # The URL compose.yaml gives ingest, on this server.
        catalog_url = f"postgresql://ingest@{host}:{port}/ingest_catalog"
        catalog = Catalog(catalog_url, FIRST_PASSWORD)
        assert catalog.datasets() == []  # its tables made, by the role that owns them
        catalog.add_source("drop", "fills", {"kind": "files"})
        catalog.close()

        # The next start runs them again: nothing is made twice, nothing is lost; a
        # rotated password takes effect and the old one stops working.
        setup(ROTATED_PASSWORD)
        catalog = Catalog(catalog_url, ROTATED_PASSWORD)
        assert catalog.source("drop") == {"kind": "files"}
        catalog.close()
        with pytest.raises(AttachError, match="password authentication failed"):
            Catalog(catalog_url, FIRST_PASSWORD)
        # Least privilege: the ingest role cannot open MLflow's database.
        for mlflows in ("mlflow", "mlflow_auth"):  # runs and registry; users
            with pytest.raises(AttachError, match="permission denied for database"):
                Catalog(f"postgresql://ingest@{host}:{port}/{mlflows}", ROTATED_PASSWORD)
