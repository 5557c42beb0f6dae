"""A throw-away PostgreSQL server from the machine's binaries (Debian's ``postgresql`` package),
listening on 127.0.0.1 with trust auth, for the store's shared-database tests."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.servers.jupyter import free_port

USER = "prophecy"


def _binaries() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql; `make test` does it)")
    return Path(found[-1]).parent


def _as_owner(command: list[str], owner: str | None) -> list[str]:
    """PostgreSQL refuses to run as root: under root, run it as the ``postgres`` system user."""
    return ["runuser", "-u", owner, "--", *command] if owner else command


@contextmanager
def running_postgres(password: str | None = None) -> Iterator[str]:
    """Start a server in a fresh folder; yields its SQLAlchemy URL; stops it and removes the folder.

    With ``password`` the server asks for it (SCRAM) from everyone, over TCP and its socket alike;
    without, it trusts local connections. The folder is made outside pytest's (root-only) temp
    dirs so the ``postgres`` user can use it.
    """
    binaries = _binaries()
    owner = "postgres" if os.geteuid() == 0 else None
    base = Path(tempfile.mkdtemp(prefix="prophecy-postgres-"))
    data = base / "data"
    if owner:
        shutil.chown(base, pwd.getpwnam(owner).pw_uid)
    port = free_port()
    run = {"check": True, "capture_output": True, "timeout": 120}
    initdb = [str(binaries / "initdb"), "-D", str(data), "-U", USER, "--auth=trust"]
    if password:
        secret_file = base / "password"
        secret_file.write_text(password)
        if owner:
            shutil.chown(secret_file, pwd.getpwnam(owner).pw_uid)
        secret_file.chmod(0o600)
        initdb[-1] = "--auth=scram-sha-256"
        initdb.append(f"--pwfile={secret_file}")
    subprocess.run(_as_owner(initdb, owner), **run)
    options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
    start = [
        str(binaries / "pg_ctl"),
        "-D",
        str(data),
        "-o",
        options,
        "-l",
        str(base / "server.log"),
        "-w",
        "start",
    ]
    subprocess.run(_as_owner(start, owner), **run)
    try:
        create = [str(binaries / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", USER, "prophecy"]
        subprocess.run(create, env={**os.environ, "PGPASSWORD": password or ""}, **run)
        login = f"{USER}:{password}" if password else USER
        yield f"postgresql+psycopg://{login}@127.0.0.1:{port}/prophecy"
    finally:
        stop = [str(binaries / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]
        subprocess.run(_as_owner(stop, owner), check=False, capture_output=True, timeout=120)
        shutil.rmtree(base, ignore_errors=True)
