"""deploy/compose passes `docker compose config` in both profiles (local: wavepod
inference serves; production: Triton on a GPU serves the same repository), with the
shape a reviewer would check by hand."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from deployment.compose_support import WAVEPOD, compose

from wavepod.registry import access


@pytest.mark.parametrize(
    ("profile", "extra"),
    [("local", ()), ("production", ("--env-file", "production.env"))],
)
def test_compose_config_passes_in_each_profile(profile: str, extra: tuple[str, ...]) -> None:
    config = json.loads(
        compose("-f", "compose.yaml", *extra, "--profile", profile, "config", "--format", "json")
    )
    services = config["services"]
    assert {*WAVEPOD, "mlflow", "postgres", "minio", "redis"} <= set(services)
    assert {"otel-collector", "prometheus", "grafana"} <= set(services)
    assert ("triton" in services) == (profile == "production")
    inference = services["gateway"]["environment"]["WAVEPOD_GATEWAY_INFERENCE"]
    assert inference == ("triton:8001" if profile == "production" else "inference:8001")
    for name in WAVEPOD:
        assert services[name]["pull_policy"] == "never", name  # local images, no registry
        assert services[name]["image"].startswith(f"wavepod/{name}:"), name
    # Only the gateway among wavepod's services is published (the one external surface).
    published = {n for n, s in services.items() if s.get("ports")}
    assert published & set(WAVEPOD) == {"gateway"}
    # What has no login of its own is published to this host's loopback only.
    open_to_network = {
        n
        for n, s in services.items()
        for p in s.get("ports", [])
        if p.get("host_ip") != "127.0.0.1"
    }
    assert open_to_network == {"gateway", "grafana"}, open_to_network
    assert services["grafana"]["environment"]["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    # Configuration the stack mounts from the repository exists where it says.
    for name, service in services.items():
        for volume in service.get("volumes", []):
            if volume["type"] == "bind":
                assert Path(volume["source"]).exists(), (name, volume["source"])
    # Inside the network, services answer only service tokens, and each caller has one.
    for name in ("ingest", "feature", "trainer", "inference"):
        tokens = services[name]["environment"][f"WAVEPOD_{name.upper()}_AUTH_TOKENS_FILE"]
        assert tokens == "/run/secrets/service_tokens", name
    evaluator = services["evaluator"]["environment"]
    assert evaluator["WAVEPOD_EVALUATOR_AUTH_TOKENS_FILE"] == "/run/secrets/evaluator_tokens"
    # Every service keeps its audit log of admin actions on the state volume.
    for name in WAVEPOD:
        audit = services[name]["environment"][f"WAVEPOD_{name.upper()}_AUDIT_LOG"]
        assert audit == f"/var/lib/wavepod/audit/{name}.jsonl", name
    for name in ("gateway", "feature", "trainer", "evaluator"):
        token = services[name]["environment"][f"WAVEPOD_{name.upper()}_AUTH_TOKEN_FILE"]
        assert token == f"/run/secrets/{name}_token", name
    # Ingest's catalog is in PostgreSQL under a role of its own, made (where missing) by
    # the setup job before ingest starts; the password is a secret, not part of the URL.
    ingest = services["ingest"]["environment"]
    assert ingest["WAVEPOD_INGEST_CATALOG"] == "postgresql://ingest@postgres:5432/ingest_catalog"
    assert ingest["WAVEPOD_INGEST_CATALOG_PASSWORD_REF"] == (
        "file:/run/secrets/ingest_catalog_password"
    )
    for needs_setup in ("ingest", "mlflow"):
        condition = services[needs_setup]["depends_on"]["postgres-setup"]["condition"]
        assert condition == "service_completed_successfully", needs_setup
    setup = services["postgres-setup"]
    assert setup["depends_on"]["postgres"]["condition"] == "service_healthy"
    scripts = next(Path(v["source"]) for v in setup["volumes"] if v["target"] == "/postgres-init")
    assert sorted(p.name for p in scripts.glob("*.sh")) == ["ingest-catalog.sh", "mlflow-auth.sh"]
    assert "/postgres-init/*.sh" in " ".join(setup["entrypoint"])
    assert {s["source"] for s in setup["secrets"]} == {
        "postgres_password",
        "ingest_catalog_password",
    }
    # The database server itself holds only its own password.
    postgres = services["postgres"]
    assert {s["source"] for s in postgres["secrets"]} == {"postgres_password"}
    # The online store asks for a password, which the feature service reads from a secret.
    feature = services["feature"]["environment"]
    assert (
        feature["WAVEPOD_FEATURE_ONLINE_STORE_PASSWORD_REF"] == "file:/run/secrets/redis_password"
    )
    redis = services["redis"]
    assert "requirepass" in " ".join(redis["entrypoint"])
    assert "redis_password" in " ".join(redis["healthcheck"]["test"])
    # MLflow lets in only wavepod's users, each calling service signs in as its own, and
    # only MLflow holds the artifact bucket's keys (the others go through its proxy).
    # (wavepod's MLflow image always runs the basic-auth app: libs/wavepod/registry/server.py.)
    mlflow = services["mlflow"]
    assert mlflow["image"].startswith("wavepod/mlflow:")
    assert mlflow["entrypoint"] is None and mlflow["command"] is None  # the image's own start
    assert mlflow["environment"]["WAVEPOD_MLFLOW_BACKEND_STORE_URI"].startswith("postgresql")
    # The services' Host header, refused by MLflow's default DNS-rebinding guard.
    assert "mlflow:5000" in mlflow["environment"]["WAVEPOD_MLFLOW_ALLOWED_HOSTS"].split(",")
    for name in ("trainer", "evaluator", "inference", "gateway"):
        environment, prefix = services[name]["environment"], f"WAVEPOD_{name.upper()}_"
        assert environment[prefix + "MLFLOW_USERNAME"] == name
        assert (
            environment[prefix + "MLFLOW_PASSWORD_FILE"] == f"/run/secrets/{name}_mlflow_password"
        )
        assert f"{name}_mlflow_password" in {s["source"] for s in services[name]["secrets"]}
    holders = {
        n
        for n, s in services.items()
        for x in s.get("secrets", [])
        if x["source"] == "s3_credentials"
    }
    assert holders == {"mlflow"}, holders
    assert services["mlflow-users"]["image"] == mlflow["image"]
    provisioning = " ".join(services["mlflow-users"]["command"])
    provisioned = set(re.findall(r"--user=(\w+)=", provisioning))
    assert provisioned == set(access.USER_ROLES)
    for name in WAVEPOD:
        assert "mlflow_admin_password" not in {
            s["source"] for s in services[name].get("secrets", [])
        }
    # Secrets are files (Compose secrets), never environment values.
    for service in services.values():
        for key, value in (service.get("environment") or {}).items():
            if any(w in key for w in ("PASSWORD", "SECRET", "TOKEN", "KEY", "CREDENTIALS")):
                assert str(value).removeprefix("file:").startswith("/run/secrets/"), key
