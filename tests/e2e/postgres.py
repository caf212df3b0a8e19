"""A throwaway PostgreSQL server from the Debian packages, in a temporary directory.

PostgreSQL refuses to run as root; under root the server runs as the `postgres` system user the
Debian package creates, which then owns the data directory.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

INSTALL_HINT = "install PostgreSQL: `apt-get update && apt-get install -y postgresql`"


@dataclass(frozen=True)
class Postgres:
    port: int
    database: str
    user: str

    @property
    def jdbc_url(self) -> str:
        return f"jdbc:postgresql://127.0.0.1:{self.port}/{self.database}?user={self.user}"


def _bin_dir() -> Path:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    # Debian keeps the server tools off PATH, one directory per major version.
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not candidates:
        raise RuntimeError(f"pg_ctl not found; {INSTALL_HINT}")
    return Path(candidates[-1]).parent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def postgres_server() -> Iterator[Postgres]:
    """Start PostgreSQL on a free port in a new directory; stop it and delete it on exit."""
    # Under /tmp, not pytest's tmp_path: that lies below a root-only directory the server's
    # user could not enter.
    root = Path(tempfile.mkdtemp(prefix="lineage-e2e-postgres-"))
    bin_dir = _bin_dir()
    as_user: list[str] = []
    user = os.environ.get("USER") or "postgres"
    if os.geteuid() == 0:
        user = "postgres"
        as_user = ["runuser", "-u", user, "--"]
    data = root / "data"
    if as_user:
        shutil.chown(root, user=user)
    subprocess.run(
        [*as_user, str(bin_dir / "initdb"), "-D", str(data), "-U", user, "-A", "trust"],
        check=True,
        capture_output=True,
    )
    port = _free_port()
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c shared_buffers=16MB"
    subprocess.run(
        [
            *as_user,
            str(bin_dir / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "-l",
            str(root / "postgres.log"),
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield Postgres(port=port, database="postgres", user=user)
    finally:
        subprocess.run(
            [*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)
