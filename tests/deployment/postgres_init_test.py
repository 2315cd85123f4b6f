"""The scripts Compose's PostgreSQL runs on its first start (deploy/compose/postgres-init),
run against a real PostgreSQL the way the image runs them: the ingest role they create
keeps its catalog there with the password from its secret, and reaches nothing else;
MLflow's users get a database of their own."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from ingest.catalog import Catalog
from wavepod.duck import AttachError
from wavepod.testing.postgres import postgres_server

SCRIPTS = sorted(Path("deploy/compose/postgres-init").glob("*.sh"))  # the image's order
SUPERUSER_PASSWORD, INGEST_PASSWORD = "postgres-secret", "ingest-secret"


def test_the_init_script_gives_ingest_its_own_catalog_database(tmp_path: Path) -> None:
    with postgres_server("mlflow", password=SUPERUSER_PASSWORD) as url:
        host, port = url.rsplit("@", 1)[1].split("/", 1)[0].split(":")
        env = {
            **os.environ,
            # What the image's entrypoint provides to its init scripts.
            "POSTGRES_USER": "postgres",
            "POSTGRES_DB": "mlflow",
            "PGHOST": host,
            "PGPORT": port,
            "PGPASSWORD": SUPERUSER_PASSWORD,
            "INGEST_CATALOG_PASSWORD": INGEST_PASSWORD,
        }
        assert [s.name for s in SCRIPTS] == ["ingest-catalog.sh", "mlflow-auth.sh"]
        for script in SCRIPTS:
            ran = subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True)
            assert ran.returncode == 0, ran.stderr
            assert INGEST_PASSWORD not in ran.stdout + ran.stderr

        # The URL compose.yaml gives ingest, on this server.
        catalog_url = f"postgresql://ingest@{host}:{port}/ingest_catalog"
        catalog = Catalog(catalog_url, INGEST_PASSWORD)
        assert catalog.datasets() == []  # its tables made, by the role that owns them
        catalog.close()
        with pytest.raises(AttachError, match="password authentication failed"):
            Catalog(catalog_url, "not-the-password")
        # Least privilege: the ingest role cannot open MLflow's database.
        for mlflows in ("mlflow", "mlflow_auth"):  # runs and registry; users
            with pytest.raises(AttachError, match="permission denied for database"):
                Catalog(f"postgresql://ingest@{host}:{port}/{mlflows}", INGEST_PASSWORD)
