"""Where prophecy-jupyter keeps its state: ``<jupyter data dir>/prophecy`` by default."""

from __future__ import annotations

import os
import stat
from pathlib import Path

DATA_DIR_ENV = "PROPHECY_JUPYTER_DATA_DIR"


def data_dir() -> Path:
    """The data folder (0700); ``PROPHECY_JUPYTER_DATA_DIR`` overrides it."""
    override = os.environ.get(DATA_DIR_ENV)
    if override:
        path = Path(override).expanduser()
    else:
        from jupyter_core.paths import jupyter_data_dir

        path = Path(jupyter_data_dir()) / "prophecy"
    return private_dir(path)


def private_dir(path: Path) -> Path:
    """A folder only its owner may enter: made 0700 (with any folders it needs), or narrowed to
    0700 when it exists wider."""
    missing = [folder for folder in (path, *path.parents) if not folder.exists()]
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)
    status = path.stat()
    if stat.S_IMODE(status.st_mode) & 0o077 and status.st_uid == os.geteuid():
        path.chmod(0o700)
    return path


def private_file(path: Path) -> Path:
    """Make ``path`` (if missing) and narrow it to 0600, so whatever writes it next writes a file
    only its owner reads."""
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600))
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        path.chmod(0o600)
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
