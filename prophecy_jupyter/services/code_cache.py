"""The encrypted local cache of code: generated drafts and snapshots of project branches.

Each entry is sealed with AES-GCM under the vault's key, bound to its name (a moved or altered
entry fails), and checked on every read: a bad entry is deleted and reported as missing, so the
caller fetches it again. The cache keeps under ``max_bytes`` by evicting the least recently used
entries. Nothing in it is readable without the key.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

from prophecy_jupyter.vault.keys import KeyStore, VaultError
from prophecy_jupyter.vault.sealing import Sealer

log = logging.getLogger(__name__)
DEFAULT_MAX_BYTES = 512 * 1024 * 1024
_KEY_ID_BYTES = 16


class CodeCache:
    def __init__(self, directory: Path, keys: KeyStore, max_bytes: int = DEFAULT_MAX_BYTES):
        self.directory = directory
        self.keys = keys
        self.max_bytes = max_bytes
        self._sealer: Sealer | None = None

    @property
    def sealer(self) -> Sealer:
        if self._sealer is None:
            self._sealer = Sealer(self.keys.load())
        return self._sealer

    def _path(self, name: str) -> Path:
        return self.directory / (hashlib.sha256(name.encode()).hexdigest() + ".sealed")

    def put(self, name: str, data: bytes) -> None:
        """Store ``data`` under ``name`` (replacing what was there), then keep within the size bound."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        sealer = self.sealer
        sealed = sealer.key.key_id.encode().ljust(_KEY_ID_BYTES)[:_KEY_ID_BYTES] + sealer.seal(
            data, f"cache:{name}"
        )
        handle, temporary = tempfile.mkstemp(dir=self.directory, prefix=".tmp-")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(sealed)
            os.chmod(temporary, 0o600)
            os.replace(temporary, self._path(name))
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        self._evict()

    def get(self, name: str) -> bytes | None:
        """The entry's bytes; None when it is missing, or was altered or sealed under another key
        (then it is dropped, to be fetched again)."""
        path = self._path(name)
        try:
            sealed = path.read_bytes()
        except FileNotFoundError:
            return None
        sealer = self.sealer
        key_id = sealed[:_KEY_ID_BYTES].decode(errors="replace").strip()
        try:
            if key_id != sealer.key.key_id[:_KEY_ID_BYTES]:
                raise VaultError("sealed under another key")
            data = sealer.open(sealed[_KEY_ID_BYTES:], f"cache:{name}", "cache entry")
        except VaultError as exc:
            log.warning("dropping cache entry %s: %s", name, exc)
            path.unlink(missing_ok=True)
            return None
        os.utime(path)  # recently used
        return data

    def delete(self, name: str) -> None:
        self._path(name).unlink(missing_ok=True)

    def clear(self) -> int:
        """Remove every entry; returns how many."""
        entries = list(self.directory.glob("*.sealed")) if self.directory.is_dir() else []
        for path in entries:
            path.unlink(missing_ok=True)
        return len(entries)

    def size(self) -> int:
        return (
            sum(p.stat().st_size for p in self.directory.glob("*.sealed")) if self.directory.is_dir() else 0
        )

    def _evict(self) -> None:
        entries = [(p.stat().st_mtime, p.stat().st_size, p) for p in self.directory.glob("*.sealed")]
        total = sum(size for _, size, _ in entries)
        for _, size, path in sorted(entries, key=lambda e: e[0]):
            if total <= self.max_bytes:
                break
            path.unlink(missing_ok=True)
            total -= size
