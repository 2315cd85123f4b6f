"""A private PostgreSQL cluster on a free loopback port, for tests.

Uses the machine's PostgreSQL binaries (Debian's postgresql package; .ci/run installs
it). initdb refuses to run as root, so the cluster belongs to the `postgres` user when
the test runs as root.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from wavepod.runtime.testing.process import free_port


def _binary(name: str) -> str:
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    found = candidates[0] if candidates else shutil.which(name)
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} is not installed (apt-get install postgresql)")
    return found


@contextmanager
def postgres_server(database: str = "wavepod", password: str = "") -> Iterator[str]:
    """Yields a `postgresql://postgres@127.0.0.1:PORT/<database>` URL: trust auth, or
    with `password`, password auth (SCRAM) over TCP, as a production server would ask."""
    root = Path(tempfile.mkdtemp(prefix="wavepod-pg-"))
    data, sockets = root / "data", root / "sock"
    sockets.mkdir()
    as_owner: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
        as_owner = [shutil.which("runuser") or "/usr/sbin/runuser", "-u", "postgres", "--"]
    port = free_port()

    env = {**os.environ, "PGPASSWORD": password}

    def run(*args: str) -> None:
        subprocess.run([*as_owner, *args], check=True, capture_output=True, timeout=120, env=env)

    auth = ["--auth=trust"]
    if password:
        secret = root / "pwfile"
        secret.write_text(password)
        if as_owner:
            shutil.chown(secret, "postgres")
        auth = ["--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={secret}"]
    run(_binary("initdb"), "-D", str(data), "-U", "postgres", *auth, "-E", "UTF8")
    options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
    run(_binary("pg_ctl"), "-D", str(data), "-o", options, "-w", "-l", str(root / "log"), "start")
    try:
        run(_binary("createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", database)
        yield f"postgresql://postgres@127.0.0.1:{port}/{database}"
    finally:
        subprocess.run(
            [*as_owner, _binary("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(root, ignore_errors=True)
