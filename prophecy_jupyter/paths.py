"""Where prophecy-jupyter keeps its state: ``<jupyter data dir>/prophecy`` by default."""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV = "PROPHECY_JUPYTER_DATA_DIR"


def data_dir() -> Path:
    """The data folder (created 0700 on first use); ``PROPHECY_JUPYTER_DATA_DIR`` overrides it."""
    override = os.environ.get(DATA_DIR_ENV)
    if override:
        path = Path(override).expanduser()
    else:
        from jupyter_core.paths import jupyter_data_dir

        path = Path(jupyter_data_dir()) / "prophecy"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def write_private(path: Path, data: bytes) -> None:
    """Write a file readable only by its owner, atomically (temp file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
