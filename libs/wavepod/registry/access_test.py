"""wavepod's MLflow users against a real MLflow server running its basic-auth app: each
service can do its work and nothing its role does not allow; strangers get nothing."""

from __future__ import annotations

import base64
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.server.auth.client import AuthServiceClient

from wavepod.registry import access, alias_version, server
from wavepod.registry.access import ADMIN, USER_ROLES, Credentials, provision, signed_in
from wavepod.runtime.status import FailedPrecondition
from wavepod.testing.mlflow import mlflow_server

ADMIN_PASSWORD = "admin-password-for-the-test"
PASSWORDS = {user: f"{user}-password-for-the-test" for user in USER_ROLES}


@pytest.fixture(scope="module")
def tracking(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    state = tmp_path_factory.mktemp("mlflow")
    with mlflow_server(state, admin_password=ADMIN_PASSWORD) as uri:
        provision(uri, Credentials(ADMIN, ADMIN_PASSWORD), PASSWORDS)
        yield uri


def _as(user: str, password: str | None = None) -> Credentials:
    return Credentials(user, password if password is not None else PASSWORDS[user])


def _refused(credentials: Credentials, call: Callable[[], Any]) -> str:
    with signed_in(credentials), pytest.raises(MlflowException) as refused:
        call()
    return str(refused.value.error_code)


def _status(uri: str, path: str, user: str = "", password: str = "") -> int:
    request = urllib.request.Request(f"{uri}{path}")
    if user:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as error:
        return error.code


@pytest.fixture(scope="module")
def trained(tracking: str) -> tuple[str, str]:
    """The trainer's work: an experiment, a run with a model file, a registered version."""
    with signed_in(_as("trainer")):
        client = MlflowClient(tracking, tracking)
        experiment = client.create_experiment("wavepod-training")
        run_id = client.create_run(experiment).info.run_id
        client.log_metric(run_id, "holdout_mae", 3.2)
        with tempfile.TemporaryDirectory() as folder:
            (Path(folder) / "model.onnx").write_bytes(b"onnx")
            client.log_artifacts(run_id, folder, "model")
        client.create_registered_model("refill")
        version = client.create_model_version("refill", f"runs:/{run_id}/model", run_id)
    return run_id, str(version.version)


def test_nobody_gets_in_without_a_user_or_with_a_wrong_password(tracking: str) -> None:
    path = "/api/2.0/mlflow/experiments/search?max_results=1"
    assert _status(tracking, path) == 401
    assert _status(tracking, path, "gateway", "not-its-password") == 401
    assert _status(tracking, path, "gateway", PASSWORDS["gateway"]) == 200
    assert _status(tracking, "/health") == 200  # probes need no user


def test_the_evaluator_promotes_and_annotates_what_the_trainer_registered(
    tracking: str, trained: tuple[str, str]
) -> None:
    run_id, version = trained
    with signed_in(_as("evaluator")):
        client = MlflowClient(tracking, tracking)
        client.set_registered_model_alias("refill", "champion", version)
        client.set_model_version_tag("refill", version, "wavepod.evaluation", "passed")
        client.log_metric(run_id, "evaluation_mae", 3.1)
    with signed_in(_as("gateway")):
        assert (
            MlflowClient(tracking, tracking)
            .get_model_version_by_alias("refill", "champion")
            .version
            == version
        )


@pytest.mark.parametrize("reader", ["gateway", "inference", "operator"])
def test_readers_read_models_and_artifacts_and_change_nothing(
    tracking: str, trained: tuple[str, str], reader: str
) -> None:
    run_id, version = trained
    with signed_in(_as(reader)), tempfile.TemporaryDirectory() as folder:
        client = MlflowClient(tracking, tracking)
        assert client.get_model_version("refill", version).run_id == run_id
        local = client.download_artifacts(run_id, "model", folder)
        assert (Path(local) / "model.onnx").read_bytes() == b"onnx"
    client = MlflowClient(tracking, tracking)
    alias = lambda: client.set_registered_model_alias("refill", "champion", version)  # noqa: E731
    assert _refused(_as(reader), alias) == "PERMISSION_DENIED"
    metric = lambda: client.log_metric(run_id, "tampered", 0.0)  # noqa: E731
    assert _refused(_as(reader), metric) == "PERMISSION_DENIED"


def test_the_trainer_cannot_touch_what_it_does_not_own(
    tracking: str, trained: tuple[str, str]
) -> None:
    with signed_in(Credentials(ADMIN, ADMIN_PASSWORD)):
        MlflowClient(tracking, tracking).create_registered_model("someone-elses")
    with signed_in(_as("trainer")):
        client = MlflowClient(tracking, tracking)
        with pytest.raises(MlflowException) as refused:
            client.set_registered_model_tag("someone-elses", "k", "v")
    assert refused.value.error_code == "PERMISSION_DENIED"


def test_provisioning_again_rotates_passwords_and_keeps_roles(
    trained: tuple[str, str], tracking: str
) -> None:
    rotated = {**PASSWORDS, "gateway": "a-rotated-gateway-password"}
    provision(tracking, Credentials(ADMIN, ADMIN_PASSWORD), rotated)
    path = "/api/2.0/mlflow/registered-models/get?name=refill"  # READ: its role still holds
    try:
        assert _status(tracking, path, "gateway", "a-rotated-gateway-password") == 200
        assert _status(tracking, path, "gateway", PASSWORDS["gateway"]) == 401
    finally:
        provision(tracking, Credentials(ADMIN, ADMIN_PASSWORD), PASSWORDS)
    with pytest.raises(ValueError, match="no MLflow role"):
        provision(tracking, Credentials(ADMIN, ADMIN_PASSWORD), {"intruder": "x" * 20})


def test_provisioning_completes_a_role_a_cut_short_run_left_without_its_grants(
    tracking: str, trained: tuple[str, str]
) -> None:
    _, version = trained
    with signed_in(Credentials(ADMIN, ADMIN_PASSWORD)):
        admin = AuthServiceClient(tracking)
        [promoter] = [r for r in admin.list_roles(access.WORKSPACE) if r.name == access.PROMOTER]
        for grant in admin.list_role_permissions(promoter.id):
            admin.remove_role_permission(grant.id)
    client = MlflowClient(tracking, tracking)
    alias = lambda: client.set_registered_model_alias("refill", "champion", version)  # noqa: E731
    assert _refused(_as("evaluator"), alias) == "PERMISSION_DENIED"
    provision(tracking, Credentials(ADMIN, ADMIN_PASSWORD), PASSWORDS)
    with signed_in(_as("evaluator")):
        alias()


def test_the_image_provisions_users_from_the_command_line(
    tracking: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Compose's mlflow-users job: the wavepod/mlflow image's `provision` command."""
    (tmp_path / "admin").write_text(ADMIN_PASSWORD + "\n")
    (tmp_path / "operator").write_text(PASSWORDS["operator"])
    server.main(
        [
            "provision",
            "--tracking-uri",
            tracking,
            "--admin-password-file",
            str(tmp_path / "admin"),
            "--user",
            f"operator={tmp_path / 'operator'}",
        ]
    )
    assert "provisioned: operator" in capsys.readouterr().out
    path = "/api/2.0/mlflow/experiments/search?max_results=1"
    assert _status(tracking, path, "operator", PASSWORDS["operator"]) == 200


def test_a_refused_service_user_is_a_deployment_to_fix_not_an_outage(
    tracking: str, trained: tuple[str, str]
) -> None:
    with signed_in(_as("gateway", "a-wrong-password")), pytest.raises(FailedPrecondition) as wrong:
        alias_version(tracking, "refill", "champion")
    assert "refused" in str(wrong.value) and "UNAUTHENTICATED" in str(wrong.value)
