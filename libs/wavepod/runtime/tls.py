"""TLS and mutual TLS from PEM files named in settings (WAVEPOD_<SERVICE>_TLS_*).

Serving: `tls_cert_file` + `tls_key_file` turn TLS on; `tls_client_ca_file` then
requires every client to present a certificate that CA signed (mTLS). Calling other
services: `tls_ca_file` turns TLS on for outgoing channels, verifying the backend
against that CA, and the service presents its own certificate when it has one.
Unset, everything is plaintext, as on loopback in development.
"""

from __future__ import annotations

from pathlib import Path

import grpc

from wavepod.runtime.settings import ServiceSettings


def _read(path: Path | None) -> bytes | None:
    return path.read_bytes() if path is not None else None


def server_credentials(settings: ServiceSettings) -> grpc.ServerCredentials | None:
    if settings.tls_cert_file is None or settings.tls_key_file is None:
        return None
    client_ca = _read(settings.tls_client_ca_file)
    return grpc.ssl_server_credentials(
        [(settings.tls_key_file.read_bytes(), settings.tls_cert_file.read_bytes())],
        root_certificates=client_ca,
        require_client_auth=client_ca is not None,
    )


def channel_credentials(settings: ServiceSettings) -> grpc.ChannelCredentials | None:
    if settings.tls_ca_file is None:
        return None
    return grpc.ssl_channel_credentials(
        root_certificates=settings.tls_ca_file.read_bytes(),
        private_key=_read(settings.tls_key_file),
        certificate_chain=_read(settings.tls_cert_file),
    )
