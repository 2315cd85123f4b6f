"""The CLI's own behaviour: where it finds services, how it reports one that is down, how
it reads inline rows. (libs/wavepod/stack/up_test.py drives every command against a
running stack.)"""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest
from typer.testing import CliRunner

from wavepod.cli.endpoints import Endpoints, audit_log, bearer, write_endpoints
from wavepod.cli.main import _row
from wavepod.cli.main import app as wavepod
from wavepod.runtime.audit import AuditLog
from wavepod.runtime.testing.process import free_port, service_process
from wavepod.testing.tls import CertificateAuthority
from wavepod.values import from_value


def test_addresses_come_from_the_environment_then_the_stack_then_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "endpoints.json").write_text(
        json.dumps({"gateway": "10.0.0.1:1", "ingest": "10.0.0.1:2", "mlflow": "http://m"})
    )
    monkeypatch.setenv("WAVEPOD_INGEST_ADDRESS", "10.0.0.9:9")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    found = Endpoints.load(tmp_path)
    assert found.addresses["ingest"] == "10.0.0.9:9"
    assert found.addresses["gateway"] == "10.0.0.1:1"
    assert found.addresses["trainer"] == "127.0.0.1:50053"
    assert found.mlflow == "http://m"


def test_tokens_come_from_the_environment_service_first_then_the_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("WAVEPOD_TOKEN", "WAVEPOD_GATEWAY_TOKEN", "WAVEPOD_EVALUATOR_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    assert Endpoints.load(tmp_path).metadata("gateway") == ()  # none: nothing is sent
    write_endpoints(tmp_path, {}, "http://m", "stack-operator")
    assert (tmp_path / "operator.token").stat().st_mode & 0o777 == 0o600
    assert Endpoints.load(tmp_path).metadata("gateway") == bearer("stack-operator")
    monkeypatch.setenv("WAVEPOD_TOKEN", "everyone")
    monkeypatch.setenv("WAVEPOD_EVALUATOR_TOKEN", "admin")
    found = Endpoints.load(tmp_path)
    assert found.metadata("evaluator") == bearer("admin")
    assert found.metadata("gateway") == bearer("everyone")


def test_audit_shows_a_services_log_after_checking_its_chain(tmp_path: Path) -> None:
    log = AuditLog(audit_log(tmp_path, "ingest"))
    log.append(
        "operator", "wavepod.ingest.v1.IngestService/RunIngest", 'source_id: "s1"', {"code": "OK"}
    )
    log.append(
        "gateway", "wavepod.ingest.v1.IngestService/RunIngest", "", {"code": "PERMISSION_DENIED"}
    )
    runner, env = CliRunner(), {"COLUMNS": "200"}
    shown = runner.invoke(wavepod, ["--state", str(tmp_path), "audit", "ingest"], env=env)
    assert shown.exit_code == 0, shown.output
    rows = [line for line in shown.output.splitlines() if "RunIngest" in line]
    assert "operator" in rows[0] and "OK" in rows[0]
    assert "gateway" in rows[1] and "PERMISSION_DENIED" in rows[1]
    assert "2 entries, chain intact" in shown.output
    # An entry edited after the fact fails the command, naming the line after it.
    lines = log.path.read_text().splitlines()
    log.path.write_text("\n".join([lines[0].replace("operator", "someone"), lines[1]]) + "\n")
    tampered = runner.invoke(wavepod, ["audit", "--file", str(log.path)], env=env)
    assert tampered.exit_code == 1 and "line 2: the chain is broken" in tampered.output
    missing = runner.invoke(wavepod, ["--state", str(tmp_path), "audit", "gateway"], env=env)
    assert missing.exit_code == 1 and "no audit log" in missing.output


def test_status_shows_each_service_and_fails_while_one_is_down(tmp_path: Path) -> None:
    with service_process("wavepod.runtime.testing.probe", "probe") as probe:
        env = {"WAVEPOD_INGEST_ADDRESS": probe.address, "COLUMNS": "200"}
        env |= {f"WAVEPOD_{s}_ADDRESS": f"127.0.0.1:{free_port()}" for s in ("GATEWAY", "FEATURE")}
        result = CliRunner().invoke(wavepod, ["--state", str(tmp_path), "status"], env=env)
    assert result.exit_code == 1, result.output
    lines = {line.split()[1]: line for line in result.output.splitlines() if "127.0.0.1" in line}
    assert "SERVING" in lines["ingest"] and "UNAVAILABLE" in lines["gateway"], result.output


def test_status_speaks_mutual_tls_when_given_a_ca_and_a_client_certificate(
    tmp_path: Path,
) -> None:
    authority = CertificateAuthority(tmp_path / "pki")
    server, client = authority.issue("probe"), authority.issue("cli")
    tls = {
        "WAVEPOD_PROBE_TLS_CERT_FILE": str(server.cert),
        "WAVEPOD_PROBE_TLS_KEY_FILE": str(server.key),
        "WAVEPOD_PROBE_TLS_CLIENT_CA_FILE": str(authority.ca),
    }
    credentials = grpc.ssl_channel_credentials(
        authority.ca.read_bytes(), client.key.read_bytes(), client.cert.read_bytes()
    )
    with service_process(
        "wavepod.runtime.testing.probe", "probe", tls, credentials=credentials
    ) as probe:

        def ingest_health(**env: str) -> str:
            env |= {"WAVEPOD_INGEST_ADDRESS": probe.address, "COLUMNS": "200"}
            out = CliRunner().invoke(wavepod, ["--state", str(tmp_path), "status"], env=env)
            return next(line for line in out.output.splitlines() if "ingest" in line)

        ca = {"WAVEPOD_TLS_CA_FILE": str(authority.ca)}
        mutual = ingest_health(
            **ca, WAVEPOD_TLS_CERT_FILE=str(client.cert), WAVEPOD_TLS_KEY_FILE=str(client.key)
        )
        assert "SERVING" in mutual, mutual
        # Without a client certificate the server refuses the handshake.
        assert "UNAVAILABLE" in ingest_health(**ca)


def test_inline_rows_read_numbers_and_text() -> None:
    row = _row("days_supply=30,copay=2.5,channel=mail")
    values = {k: from_value(v) for k, v in row.values.items()}
    assert values == {"days_supply": 30, "copay": 2.5, "channel": "mail"}
    bad = CliRunner().invoke(wavepod, ["predict", "--row", "days_supply"])
    assert bad.exit_code == 2 and "expected name=value" in bad.output
