"""TLS on the public surface and mutual TLS on the hop behind it: the gateway requires
client certificates from its CA, and calls an inference service that requires the
gateway's own certificate; tokens still apply on top."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from gateway.testing import SYNTHETIC_SIGNATURE, synthetic_row
from inference.repository import ModelRepository
from inference.testing import publish, spec, tree_model
from wavepod.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from wavepod.runtime.auth import hash_token
from wavepod.runtime.testing.process import service_process
from wavepod.testing.tls import CertificateAuthority, Issued

TOKEN = (("authorization", "Bearer app-token"),)


def _credentials(ca: Path, client: Issued | None) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(
        root_certificates=ca.read_bytes(),
        private_key=client.key.read_bytes() if client else None,
        certificate_chain=client.cert.read_bytes() if client else None,
    )


def _tls_env(prefix: str, issued: Issued, ca: Path) -> dict[str, str]:
    return {
        f"{prefix}TLS_CERT_FILE": str(issued.cert),
        f"{prefix}TLS_KEY_FILE": str(issued.key),
        f"{prefix}TLS_CLIENT_CA_FILE": str(ca),
    }


def _predict(address: str, credentials: grpc.ChannelCredentials | None, metadata=TOKEN):  # type: ignore[no-untyped-def]
    channel = (
        grpc.secure_channel(address, credentials)
        if credentials is not None
        else grpc.insecure_channel(address)
    )
    with channel:
        stub = gateway_pb2_grpc.GatewayServiceStub(channel)
        request = gateway_pb2.PredictRequest(rows=[synthetic_row()])
        return stub.Predict(request, metadata=metadata, timeout=5)


def test_mutual_tls_on_the_gateway_and_behind_it(tmp_path: Path) -> None:
    authority = CertificateAuthority(tmp_path / "pki")
    rogue = CertificateAuthority(tmp_path / "rogue", name="rogue CA")
    inference_cert, gateway_cert = authority.issue("inference"), authority.issue("gateway")
    client = authority.issue("client")
    repository = ModelRepository(tmp_path / "models")
    publish(
        repository, "synthetic", 1, tree_model(), spec(signature_json=SYNTHETIC_SIGNATURE.to_json())
    )
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{hash_token('app-token')} app predict\n")
    inference_env = {
        "WAVEPOD_INFERENCE_MODEL_REPOSITORY": str(repository.root),
        **_tls_env("WAVEPOD_INFERENCE_", inference_cert, authority.ca),
    }
    as_client = _credentials(authority.ca, client)
    with service_process(
        "inference.server", "inference", inference_env, credentials=as_client
    ) as inference:
        gateway_env = {
            "WAVEPOD_GATEWAY_INFERENCE": inference.address,
            "WAVEPOD_GATEWAY_DEFAULT_MODEL": "synthetic",
            "WAVEPOD_GATEWAY_AUTH_TOKENS_FILE": str(tokens),
            "WAVEPOD_GATEWAY_PREDICTION_LOG_DIR": str(tmp_path / "log"),
            "WAVEPOD_GATEWAY_AUDIT_LOG": str(tmp_path / "audit.jsonl"),
            "WAVEPOD_GATEWAY_PREDICTION_LOG_TO_LAKE": "false",  # no ingest here
            # Outgoing: verify inference against the CA, present the gateway's certificate.
            "WAVEPOD_GATEWAY_TLS_CA_FILE": str(authority.ca),
            **_tls_env("WAVEPOD_GATEWAY_", gateway_cert, authority.ca),
        }
        with service_process(
            "gateway.server", "gateway", gateway_env, credentials=as_client
        ) as gateway:
            answer = _predict(gateway.address, as_client)
            assert answer.model.version == "1" and len(answer.predictions) == 1

            refused = {
                "plaintext": None,
                "no client certificate": _credentials(authority.ca, None),
                "a certificate another CA signed": _credentials(
                    authority.ca, rogue.issue("mallory")
                ),
            }
            for why, credentials in refused.items():
                with pytest.raises(grpc.RpcError) as error:
                    _predict(gateway.address, credentials)
                assert error.value.code() == grpc.StatusCode.UNAVAILABLE, why

            # A good certificate does not replace the token.
            with pytest.raises(grpc.RpcError) as error:
                _predict(gateway.address, as_client, metadata=())
            assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
