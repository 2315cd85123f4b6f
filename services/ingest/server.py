"""The ingest service process: `./pants run services/ingest:server`.

Settings come from WAVEPOD_INGEST_* environment variables (ingest/settings.py).
"""

from ingest.engine import IngestEngine
from ingest.servicer import IngestServicer
from ingest.settings import IngestSettings
from wavepod.ingest.v1 import ingest_pb2, ingest_pb2_grpc
from wavepod.runtime import Registration, ServiceApp, run
from wavepod.runtime.auth import method_roles, rpc_paths
from wavepod.runtime.secrets import optional_secret

DEFAULT_PORT = 50051
# Who may call what when auth is on: the gateway streams events into its own datasets,
# services that read the lake list lineage, an operator (admin) registers and runs sources.
METHOD_ROLES = method_roles(
    ingest_pb2.DESCRIPTOR.services_by_name["IngestService"],
    {
        "RegisterSchema": {"events", "admin"},
        "StreamEvents": {"events", "admin"},
        "GetSchema": {"events", "lineage", "admin"},
        "GetLineage": {"lineage", "admin"},
        "ListDatasets": {"lineage", "admin"},
        "ProfileDataset": {"lineage", "admin"},
        "RegisterSource": {"admin"},
        "RunIngest": {"admin"},
    },
)
AUDITED = rpc_paths(
    ingest_pb2.DESCRIPTOR.services_by_name["IngestService"],
    ("RegisterSchema", "RegisterSource", "RunIngest"),
)


def app(settings: IngestSettings) -> ServiceApp:
    engine = IngestEngine(
        settings.lake_root,
        pii_key=optional_secret(settings.pii_key_ref, "pii_key_ref").encode() or None,
        catalog=settings.catalog,
        s3_endpoint_url=settings.s3_endpoint_url,
        catalog_password=optional_secret(settings.catalog_password_ref, "catalog_password_ref"),
        kept_values_max_bytes=settings.kept_values_max_mb << 20,
    )
    return ServiceApp(
        name="ingest",
        registrations=[
            Registration.of(
                ingest_pb2,
                ingest_pb2_grpc,
                "IngestService",
                IngestServicer(engine, settings.stream_batch_size),
            )
        ],
        flush_hooks=[engine.close],
        method_roles=METHOD_ROLES,
        audited_methods=AUDITED,
    )


if __name__ == "__main__":
    run("ingest", app, IngestSettings, port=DEFAULT_PORT)
