"""Kubernetes manifests for wavepod's services, translated from the Compose stack.

    ./pants run libs/wavepod/deploy/kubernetes.py        # rewrites deploy/k8s/wavepod.yaml

deploy/compose/compose.yaml stays the one place that says how each service is
configured (its environment, which secrets it reads, whom it calls); this module turns
that into what a cluster runs, so the two cannot drift (tests/deployment/kubernetes_test.py
checks the committed file is this output and valid against the Kubernetes API schemas).

Per service: a ServiceAccount with no API token, a Deployment (non-root, read-only root
filesystem, no capabilities, gRPC health probes, the drain time Compose gives it, only
its own secrets mounted where Compose mounts them), a Service, and a NetworkPolicy that
admits only the services that call it (read from their configured addresses) and pods
labelled `wavepod.io/operator: "true"` (an operator's toolbox; `kubectl port-forward`
works too). The gateway alone is open, behind a LoadBalancer. Everything else in the
namespace is denied by default.

MLflow runs from wavepod's own image the same way (an HTTP health probe; no state
volume: its stores are PostgreSQL and the artifact bucket), reachable only from the
services configured to call it and the `mlflow-users` Job, which makes wavepod's MLflow
users as Compose's job does (run it again after rotating a password: delete the Job and
apply). The other backing services (PostgreSQL, Redis, MinIO or S3, the OpenTelemetry
Collector) are the platform's: managed ones behind Services of the Compose names
(`ExternalName` works), or charts of their own. State is one ReadWriteMany claim, as
Compose shares one volume; `fsGroup` makes it the services' own (Compose's `state-init`).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

COMPOSE = Path("deploy/compose/compose.yaml")
OUTPUT = Path("deploy/k8s/wavepod.yaml")
# Each service's gRPC port (the images' WAVEPOD_<SERVICE>_PORT; services/<name>/BUILD).
PORTS = {
    "ingest": 50051,
    "feature": 50052,
    "trainer": 50053,
    "evaluator": 50054,
    "inference": 8001,
    "gateway": 50050,
}
# Served over HTTP, from wavepod's images too: the health path each answers.
HTTP_PORTS = {"mlflow": 5000}
HTTP_HEALTH = {"mlflow": "/health"}
SERVED = {**PORTS, **HTTP_PORTS}
# One-shot jobs of the Compose stack that run in the cluster too: the service they serve.
JOBS = {"mlflow-users": "mlflow"}
UID = 65532  # the images' user
STATE_CLAIM = "wavepod-state"
SECRET = "wavepod-secrets"  # made from deploy/compose/secrets (see the README)
OPERATOR = {"wavepod.io/operator": "true"}
MEMORY_LIMIT = {"trainer": "6Gi", "feature": "4Gi"}
_DEFAULTED = re.compile(r"\$\{(\w+):-([^}]*)\}")


def _interpolate(value: str) -> str:
    """Compose's `${NAME:-default}` with nothing set: the default."""
    return _DEFAULTED.sub(lambda m: m.group(2), value).replace("$$", "$")


def _labels(service: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": service, "app.kubernetes.io/part-of": "wavepod"}


def callers(services: dict[str, Any]) -> dict[str, set[str]]:
    """Who calls whom: a service calls another when an address in its environment names
    it (`feature:50052`, `ingest://ingest:50051`)."""
    found: dict[str, set[str]] = {name: set() for name in SERVED}
    for caller in PORTS:
        for value in services[caller].get("environment", {}).values():
            for callee in SERVED:
                if callee != caller and re.search(rf"(^|//){callee}:\d", _interpolate(str(value))):
                    found[callee].add(caller)
    for job, serves in JOBS.items():
        found[serves].add(job)
    return found


def _pod_security() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": UID,
        "runAsGroup": UID,
        "fsGroup": UID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _container_security() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }


def _secrets_volume(secrets: list[str]) -> dict[str, Any]:
    return {
        "name": "secrets",
        "secret": {
            "secretName": SECRET,
            "defaultMode": 0o440,  # root-owned, group fsGroup: the service's
            "items": [{"key": s, "path": s} for s in secrets],
        },
    }


SECRETS_MOUNT = {"name": "secrets", "mountPath": "/run/secrets", "readOnly": True}
TMP_MOUNT = {"name": "tmp", "mountPath": "/tmp"}  # PEX_ROOT and HOME


def _deployment(name: str, service: dict[str, Any]) -> dict[str, Any]:
    env = []
    for key, value in service.get("environment", {}).items():
        text = _interpolate(str(value))
        if key == "OTEL_RESOURCE_ATTRIBUTES":
            text = text.replace(
                "deployment.environment=compose", "deployment.environment=kubernetes"
            )
        env.append({"name": key, "value": text})
    secrets = sorted(service.get("secrets", []))
    port = SERVED[name]
    # wavepod's gRPC services share the state volume; MLflow (HTTP) keeps nothing on disk.
    grpc_service = name in PORTS

    def probe(**fields: int) -> dict[str, Any]:
        if grpc_service:
            return {"grpc": {"port": port}, "periodSeconds": 10, **fields}
        # MLflow accepts only the Host headers it is configured with (DNS rebinding).
        check = {
            "path": HTTP_HEALTH[name],
            "port": "http",
            "httpHeaders": [{"name": "Host", "value": f"localhost:{port}"}],
        }
        return {"httpGet": check, "periodSeconds": 10, **fields}

    container = {
        "name": name,
        "image": f"wavepod/{name}:latest",
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "grpc" if grpc_service else "http", "containerPort": port}],
        "env": env,
        "startupProbe": probe(failureThreshold=60),  # a PEX unpacks on first start
        "readinessProbe": probe(),
        "livenessProbe": probe(periodSeconds=20, failureThreshold=3),
        "resources": {
            "requests": {"cpu": "250m", "memory": "512Mi"},
            "limits": {"memory": MEMORY_LIMIT.get(name, "2Gi")},
        },
        "securityContext": _container_security(),
        "volumeMounts": [
            *([{"name": "state", "mountPath": "/var/lib/wavepod"}] if grpc_service else []),
            dict(TMP_MOUNT),
            *([dict(SECRETS_MOUNT)] if secrets else []),
        ],
    }
    volumes: list[dict[str, Any]] = [
        *(
            [{"name": "state", "persistentVolumeClaim": {"claimName": STATE_CLAIM}}]
            if grpc_service
            else []
        ),
        {"name": "tmp", "emptyDir": {}},
        *([_secrets_volume(secrets)] if secrets else []),
    ]
    grace = int(str(service.get("stop_grace_period", "30s")).rstrip("s"))
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": _labels(name)},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
            "template": {
                "metadata": {"labels": _labels(name)},
                "spec": {
                    "serviceAccountName": name,
                    "automountServiceAccountToken": False,
                    "terminationGracePeriodSeconds": grace + 5,  # drain, then flush
                    "securityContext": _pod_security(),
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    }


def _job(name: str, service: dict[str, Any]) -> dict[str, Any]:
    """A Compose one-shot job (its image's command) as a Job: retried until it succeeds."""
    secrets = sorted(service.get("secrets", []))
    image = _interpolate(str(service["image"])).rsplit(":", 1)[0]
    container = {
        "name": name,
        "image": f"{image}:latest",
        "imagePullPolicy": "IfNotPresent",
        "args": [_interpolate(str(a)) for a in service["command"]],
        "securityContext": _container_security(),
        "volumeMounts": [dict(TMP_MOUNT), *([dict(SECRETS_MOUNT)] if secrets else [])],
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": _labels(name)},
        "spec": {
            "backoffLimit": 10,  # until the service it provisions answers
            "template": {
                "metadata": {"labels": _labels(name)},
                "spec": {
                    "restartPolicy": "OnFailure",
                    "automountServiceAccountToken": False,
                    "securityContext": _pod_security(),
                    "containers": [container],
                    "volumes": [
                        {"name": "tmp", "emptyDir": {}},
                        *([_secrets_volume(secrets)] if secrets else []),
                    ],
                },
            },
        },
    }


def _network_policy(name: str, calling: set[str]) -> dict[str, Any]:
    port = [{"protocol": "TCP", "port": SERVED[name]}]
    if name == "gateway":  # the one external surface (bearer tokens)
        rules: list[dict[str, Any]] = [{"ports": port}]
    else:
        peers = [
            {"podSelector": {"matchLabels": {"app.kubernetes.io/name": c}}} for c in sorted(calling)
        ]
        rules = [{"from": [*peers, {"podSelector": {"matchLabels": OPERATOR}}], "ports": port}]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "labels": _labels(name)},
        "spec": {
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": name}},
            "policyTypes": ["Ingress"],
            "ingress": rules,
        },
    }


def manifests(compose: dict[str, Any]) -> Iterator[dict[str, Any]]:
    services = compose["services"]
    calls = callers(services)
    yield {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "default-deny-ingress"},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
    }
    yield {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": STATE_CLAIM, "labels": {"app.kubernetes.io/part-of": "wavepod"}},
        "spec": {
            "accessModes": ["ReadWriteMany"],
            "resources": {"requests": {"storage": "50Gi"}},
        },
    }
    for name in SERVED:
        yield {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": name, "labels": _labels(name)},
            "automountServiceAccountToken": False,
        }
        yield _deployment(name, services[name])
        yield {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "labels": _labels(name)},
            "spec": {
                "type": "LoadBalancer" if name == "gateway" else "ClusterIP",
                "selector": {"app.kubernetes.io/name": name},
                "ports": [
                    {
                        "name": protocol,
                        "port": SERVED[name],
                        "targetPort": protocol,
                        "appProtocol": protocol,
                    }
                    for protocol in ["grpc" if name in PORTS else "http"]
                ],
            },
        }
        yield _network_policy(name, calls[name])
    for job in JOBS:
        yield _job(job, services[job])


def render(compose_file: Path = COMPOSE) -> str:
    compose = yaml.safe_load(compose_file.read_text())
    header = (
        "# Generated from deploy/compose/compose.yaml by libs/wavepod/deploy/kubernetes.py:\n"
        "# edit Compose (or the generator), then `./pants run libs/wavepod/deploy/kubernetes.py`.\n"
    )
    return header + yaml.safe_dump_all(manifests(compose), sort_keys=False, width=100)


def main() -> int:
    OUTPUT.write_text(render())
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
