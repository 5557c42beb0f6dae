"""The encrypted local cache of code: each user's generated drafts and snapshots of the commits
they fetched or made, per project.

Entries belong to one user and one project: ``<cache>/<project>/<user digest>/<name digest>``.
Each is sealed with AES-GCM under a key of that user's own (derived from the vault's key, or
handed by the hub service for that user only), bound to user, project and name: an entry moved to
another user's or project's folder, altered, or sealed under another key fails its check, is
deleted and reported as missing, so the caller fetches it again with the user's own token. Nothing
one user wrote (an unpushed commit, a draft) is readable by another. Snapshots are addressed by
the commit they came from; ``head:<branch>`` names the commit of the latest one. A project's
entries go with it. The cache keeps under ``max_bytes`` by evicting the least recently used
entries.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from prophecy_jupyter.errors import VaultError
from prophecy_jupyter.paths import private_dir
from prophecy_jupyter.vault.sealing import Sealer

log = logging.getLogger(__name__)
DEFAULT_MAX_BYTES = 512 * 1024 * 1024
_KEY_ID_BYTES = 16
_ENTRY = "*/*/*.sealed"

UserKey = Callable[[str], Sealer]
"""The sealer of a user's own cache key."""


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class CodeCache:
    def __init__(self, directory: Path, user_key: UserKey, max_bytes: int = DEFAULT_MAX_BYTES):
        self.directory = directory
        self.user_key = user_key
        self.max_bytes = max_bytes

    def _sealer(self, user: str) -> Sealer:
        """The user's sealer, asked each time (the vault's key may have been rotated meanwhile)."""
        return self.user_key(user)

    def _path(self, user: str, project: str, name: str) -> Path:
        return self.directory / _digest(project) / _digest(user) / f"{_digest(name)}.sealed"

    @staticmethod
    def _context(user: str, project: str, name: str) -> str:
        return f"cache\x00{user}\x00{project}\x00{name}"

    def put(self, user: str, project: str, name: str, data: bytes) -> None:
        """Store ``data`` as the user's entry ``name`` of ``project``, then keep within the bound."""
        path = self._path(user, project, name)
        private_dir(path.parent)
        sealer = self._sealer(user)
        sealed = sealer.key.key_id.encode()[:_KEY_ID_BYTES].ljust(_KEY_ID_BYTES) + sealer.seal(
            data, self._context(user, project, name)
        )
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(sealed)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        self._evict()

    def get(self, user: str, project: str, name: str) -> bytes | None:
        """The user's entry; None when it is missing, or was altered, moved or sealed under another
        key (then it is dropped, to be fetched again)."""
        path = self._path(user, project, name)
        try:
            sealed = path.read_bytes()
        except FileNotFoundError:
            return None
        sealer = self._sealer(user)
        try:
            if sealed[:_KEY_ID_BYTES].decode(errors="replace").strip() != sealer.key.key_id[:_KEY_ID_BYTES]:
                raise VaultError("sealed under another key")
            data = sealer.open(sealed[_KEY_ID_BYTES:], self._context(user, project, name), "cache entry")
        except VaultError as exc:
            log.warning("dropping a cache entry of project %s: %s", project, exc)
            path.unlink(missing_ok=True)
            return None
        os.utime(path)  # recently used
        return data

    def delete(self, user: str, project: str, name: str) -> None:
        self._path(user, project, name).unlink(missing_ok=True)

    def drop_project(self, project: str) -> None:
        """Every user's entries of a project (it was deleted)."""
        shutil.rmtree(self.directory / _digest(project), ignore_errors=True)

    def keep_only(self, user: str, projects: Iterable[str]) -> int:
        """Drop the user's entries of every project not in ``projects`` (deleted, or no longer
        theirs); returns how many projects' entries went."""
        if not self.directory.is_dir():
            return 0
        keep, mine = {_digest(p) for p in projects}, _digest(user)
        gone = 0
        for folder in [p for p in self.directory.iterdir() if p.is_dir() and p.name not in keep]:
            if (folder / mine).is_dir():
                shutil.rmtree(folder / mine, ignore_errors=True)
                gone += 1
            with contextlib.suppress(OSError):
                folder.rmdir()  # once nobody's entries are left
        return gone

    def clear(self) -> int:
        """Remove every entry; returns how many."""
        entries = list(self.directory.glob(_ENTRY)) if self.directory.is_dir() else []
        for path in entries:
            path.unlink(missing_ok=True)
        return len(entries)

    def size(self) -> int:
        return sum(p.stat().st_size for p in self.directory.glob(_ENTRY)) if self.directory.is_dir() else 0

    def _evict(self) -> None:
        entries = []
        for path in self.directory.glob(_ENTRY):
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            entries.append((stat.st_mtime, stat.st_size, path))
        total = sum(size for _, size, _ in entries)
        for _, size, path in sorted(entries, key=lambda e: e[0]):
            if total <= self.max_bytes:
                break
            path.unlink(missing_ok=True)
            total -= size
