"""Secrets encrypted with AES-GCM, one entry per name, write-only to the outside.

Each entry is ``nonce || ciphertext`` with the entry's name as associated data, so an entry
copied under another name fails to decrypt. A tampered entry is an error, never dropped.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from prophecy_jupyter.paths import write_private
from prophecy_jupyter.vault.keys import VaultError, load_key

STORE_FILE = "vault.json"
NONCE_BYTES = 12


class SecretStore:
    """A file of encrypted secrets under the data dir."""

    def __init__(self, data_dir: Path, key: bytes | None = None):
        self._path = data_dir / STORE_FILE
        self._aead = AESGCM(key if key is not None else load_key(data_dir))
        self._lock = threading.Lock()

    def _entries(self) -> dict[str, str]:
        if not self._path.exists():
            return {}
        try:
            return dict(json.loads(self._path.read_text())["entries"])
        except (ValueError, KeyError, TypeError):
            raise VaultError(
                f"{self._path} is damaged; restore it, or remove it and set the secrets again."
            ) from None

    def _save(self, entries: dict[str, str]) -> None:
        write_private(self._path, json.dumps({"version": 1, "entries": entries}, indent=1).encode())

    def put(self, name: str, secret: str) -> None:
        """Store (or replace) a secret."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = nonce + self._aead.encrypt(nonce, secret.encode(), name.encode())
        with self._lock:
            entries = self._entries()
            entries[name] = base64.b64encode(sealed).decode()
            self._save(entries)

    def get(self, name: str) -> str | None:
        """The secret, or None when none is set; raises VaultError when it cannot be decrypted."""
        sealed_text = self._entries().get(name)
        if sealed_text is None:
            return None
        sealed = base64.b64decode(sealed_text)
        try:
            plain = self._aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], name.encode())
        except InvalidTag:
            raise VaultError(
                f"The stored secret '{name}' failed its integrity check (tampered, or encrypted "
                "with another key). Set it again."
            ) from None
        return plain.decode()

    def has(self, name: str) -> bool:
        return name in self._entries()

    def delete(self, name: str) -> None:
        with self._lock:
            entries = self._entries()
            if entries.pop(name, None) is not None:
                self._save(entries)
