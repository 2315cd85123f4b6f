"""The ingest service process: `./pants run services/ingest:server`.

Settings come from WAVEPOD_INGEST_* environment variables (wavepod.runtime.settings).
"""

from wavepod.ingest.v1 import ingest_pb2, ingest_pb2_grpc
from wavepod.runtime import Registration, ServiceApp, run

DEFAULT_PORT = 50051
NOT_BUILT = "landing sources into the governed lake arrives with the ingest milestone (issue #3)"


def app() -> ServiceApp:
    return ServiceApp(
        name="ingest",
        registrations=[
            Registration.unbuilt(ingest_pb2, ingest_pb2_grpc, "IngestService", NOT_BUILT)
        ],
    )


if __name__ == "__main__":
    run(app(), port=DEFAULT_PORT)
