"""deploy/k8s: the committed manifests are what the generator makes from the Compose
stack (wavepod's six services, MLflow and the job that makes its users), valid against
the Kubernetes API's schemas (strict: no unknown fields), and carry what a reviewer of a
cluster would check: least privilege, probes, one secret each, and network access only
from each service's callers."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from deployment.compose_support import COMPOSE_DIR, WAVEPOD

from wavepod.deploy.kubernetes import HTTP_PORTS, OUTPUT, PORTS, SERVED, render

K8S = Path("deploy/k8s")
# Who may reach each service (from the addresses each is configured with in Compose).
CALLERS = {
    "ingest": {"feature", "evaluator", "gateway"},
    "feature": {"gateway", "trainer"},
    "trainer": {"evaluator"},
    "inference": {"gateway", "evaluator"},
    "evaluator": set(),  # operators only
    "mlflow": {"trainer", "evaluator", "inference", "gateway", "mlflow-users"},
}


def documents() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(OUTPUT.read_text()) if d]


def by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in documents() if d["kind"] == kind}


def test_the_committed_manifests_are_the_generators_output() -> None:
    assert (
        OUTPUT.read_text() == render()
    ), "deploy/k8s/wavepod.yaml is stale: ./pants run libs/wavepod/deploy/kubernetes.py"


@pytest.mark.parametrize("path", ["wavepod.yaml", "namespace.yaml"])
def test_manifests_are_valid_kubernetes_objects(path: str) -> None:
    version = kubernetes_validate.latest_version()
    for document in yaml.safe_load_all((K8S / path).read_text()):
        kubernetes_validate.validate(document, version, strict=True)
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert path in kustomization["resources"]


def test_each_service_runs_with_least_privilege_and_its_own_secrets() -> None:
    compose = yaml.safe_load((COMPOSE_DIR / "compose.yaml").read_text())["services"]
    deployments, services = by_kind("Deployment"), by_kind("Service")
    accounts = by_kind("ServiceAccount")
    assert set(deployments) == set(services) == set(accounts) == {*WAVEPOD, *HTTP_PORTS}
    # Each service listens where its callers dial it in Compose.
    dialled = {
        (m.group(1), int(m.group(2)))
        for service in compose.values()
        for value in service.get("environment", {}).values()
        if (m := re.search(rf"(?:^|//)({'|'.join(WAVEPOD)}):(\d+)", str(value)))
    }
    assert dialled and all(PORTS[name] == port for name, port in dialled), dialled
    for name in SERVED:
        pod = deployments[name]["spec"]["template"]["spec"]
        [container] = pod["containers"]
        assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"]
        assert pod["automountServiceAccountToken"] is False
        assert accounts[name]["automountServiceAccountToken"] is False
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] and not context["allowPrivilegeEscalation"]
        assert context["capabilities"]["drop"] == ["ALL"]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            if name in PORTS:
                assert container[probe]["grpc"]["port"] == PORTS[name], (name, probe)
            else:  # MLflow: HTTP, with a Host header it accepts (its allowed hosts)
                check = container[probe]["httpGet"]
                assert check["path"] == "/health" and check["port"] == "http", (name, probe)
                [host] = [h["value"] for h in check["httpHeaders"] if h["name"] == "Host"]
                allowed = compose[name]["environment"]["WAVEPOD_MLFLOW_ALLOWED_HOSTS"]
                assert f"{host.split(':')[0]}:*" in allowed.split(","), (host, allowed)
        # Only wavepod's own services share the state volume.
        claims = [v for v in pod["volumes"] if "persistentVolumeClaim" in v]
        assert bool(claims) == (name in PORTS), name
        # The same configuration as Compose, and only the secrets Compose gives it.
        assert {e["name"] for e in container["env"]} == set(compose[name]["environment"])
        mounted = [v["secret"]["items"] for v in pod["volumes"] if "secret" in v]
        assert sorted(i["key"] for items in mounted for i in items) == sorted(
            compose[name]["secrets"]
        )
        assert not any(
            re.search(r"(password|token|secret)\s*[:=]", e["value"], re.I) for e in container["env"]
        ), name
        expected_type = "LoadBalancer" if name == "gateway" else "ClusterIP"
        assert services[name]["spec"]["type"] == expected_type, name


def test_only_a_services_callers_may_reach_it() -> None:
    policies = by_kind("NetworkPolicy")
    assert policies["default-deny-ingress"]["spec"] == {
        "podSelector": {},
        "policyTypes": ["Ingress"],
    }
    [gateway_rule] = policies["gateway"]["spec"]["ingress"]
    assert "from" not in gateway_rule  # the public surface
    for name, callers in CALLERS.items():
        [rule] = policies[name]["spec"]["ingress"]
        allowed = {
            peer["podSelector"]["matchLabels"].get("app.kubernetes.io/name")
            for peer in rule["from"]
        }
        assert allowed - {None} == callers, name
        assert rule["ports"] == [{"protocol": "TCP", "port": SERVED[name]}]


def test_mlflows_users_are_made_by_a_job_as_compose_makes_them() -> None:
    compose = yaml.safe_load((COMPOSE_DIR / "compose.yaml").read_text())["services"]
    job = by_kind("Job")["mlflow-users"]["spec"]
    pod = job["template"]["spec"]
    [container] = pod["containers"]
    assert container["image"] == "wavepod/mlflow:latest"
    assert container["args"] == compose["mlflow-users"]["command"]
    assert pod["restartPolicy"] == "OnFailure" and pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"]
    assert container["securityContext"]["readOnlyRootFilesystem"]
    [mounted] = [v["secret"]["items"] for v in pod["volumes"] if "secret" in v]
    assert sorted(i["key"] for i in mounted) == sorted(compose["mlflow-users"]["secrets"])
