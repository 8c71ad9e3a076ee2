"""Fixtures for the station tests: an image, record stores, and a throwaway PostgreSQL.

The PostgreSQL fixture makes a cluster with Debian's ``postgresql`` binaries
(``/usr/lib/postgresql/*/bin``, or ``$DFUSE_PG_BIN``) in a temporary directory, as a
non-root user when the tests run as root (PostgreSQL refuses to run as root; the
``nobody`` account is used), listening on loopback only on a free port. The tests
that need it skip when it cannot be started, unless ``$DFUSE_REQUIRE_POSTGRES`` is
set (CI sets it): then they fail.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dfuse.file import DfuSeFile

IMAGE_BASE = 0x08000000
#: Stamps go into sector 1 (0x08004000, 16 KiB), which the image does not use.
STAMP_BASE = 0x08004000


@pytest.fixture
def image() -> DfuSeFile:
    """A 16 KiB image in flash sector 0 (random-looking, so a misplaced byte shows)."""
    data = bytes((i * 131 + (i >> 8) * 7) & 0xFF for i in range(16 * 1024))
    return DfuSeFile.from_bin(data, address=IMAGE_BASE)


@pytest.fixture
def image_file(tmp_path: Path, image: DfuSeFile) -> Path:
    path = tmp_path / "fw.dfu"
    image.save(path)
    return path


# --------------------------------------------------------------------------- PostgreSQL


def _pg_bin() -> Path | None:
    env = os.environ.get("DFUSE_PG_BIN")
    if env:
        return Path(env)
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    for candidate in reversed(candidates):
        if (candidate / "initdb").exists():
            return candidate
    which = shutil.which("initdb")
    return Path(which).parent if which else None


def _unavailable(reason: str) -> Any:
    if os.environ.get("DFUSE_REQUIRE_POSTGRES"):
        pytest.fail(f"PostgreSQL is required here ($DFUSE_REQUIRE_POSTGRES) but {reason}")
    pytest.skip(f"PostgreSQL cannot be started: {reason}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PgCluster:
    """A running throwaway cluster: :meth:`new_database` gives a fresh database URL."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.admin_url = f"postgresql://postgres@127.0.0.1:{port}/postgres"

    def new_database(self) -> str:
        import psycopg

        name = "dfuse_" + uuid.uuid4().hex[:12]
        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def execute(self, database_url: str, sql: str) -> None:
        import psycopg

        dbname = database_url.rsplit("/", 1)[1]
        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname={dbname}", autocommit=True
        ) as conn:
            conn.execute(sql)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """A PostgreSQL server for the session (initdb, pg_ctl start; removed at the end)."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _unavailable("psycopg is not installed (pip install 'pydfuse[station]')")
    bindir = _pg_bin()
    if bindir is None or not (bindir / "initdb").exists():
        _unavailable("no initdb found (apt-get install postgresql, or set $DFUSE_PG_BIN)")
    assert bindir is not None
    user: str | None = None
    if os.geteuid() == 0:
        user = "nobody"
        try:
            pwd.getpwnam(user)
        except KeyError:
            _unavailable("running as root and there is no 'nobody' user to run it as")
    root = Path(tempfile.mkdtemp(prefix="dfuse-pg-"))
    data, sockets, log = root / "data", root / "sock", root / "server.log"
    sockets.mkdir()
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chmod(root, 0o755)
        for path in (root, sockets):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    port = _free_port()
    # run from the cluster's directory: the checkout may not be readable by that user
    run_as: dict[str, Any] = {"cwd": str(root)}
    if user is not None:
        run_as["user"] = user
    try:
        subprocess.run(
            [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
             "-E", "UTF8", "--no-sync", "--no-instructions"],
            check=True, capture_output=True, timeout=120, **run_as,
        )  # fmt: skip
        options = (
            f"-c listen_addresses=127.0.0.1 -p {port} -k {sockets} -F"
            " -c max_connections=60 -c shared_buffers=16MB"
        )
        subprocess.run(
            [str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(log), "-w",
             "-t", "60", "start"],
            check=True, capture_output=True, timeout=90, **run_as,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        text = detail.decode(errors="replace").strip() if isinstance(detail, bytes) else ""
        with contextlib.suppress(OSError):
            text += "\n" + log.read_text(errors="replace")[-2000:]
        shutil.rmtree(root, ignore_errors=True)
        _unavailable(f"{exc} {text}".strip())
    try:
        yield PgCluster(port)
    finally:
        subprocess.run(
            [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
            capture_output=True, timeout=60, **run_as,
        )  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_url(pg_cluster: PgCluster) -> str:
    """A fresh, empty database on the session's PostgreSQL server."""
    return pg_cluster.new_database()
