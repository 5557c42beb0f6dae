"""The vault key: from ``PROPHECY_JUPYTER_KEY``, a 0600 key file under the data dir, or the OS
keyring (``PROPHECY_JUPYTER_KEY_SOURCE=keyring``).

A rotation first stages the new key beside the current one, re-encrypts, then promotes it; a
staged key found at start-up means a rotation was interrupted and is finished or dropped.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from prophecy_jupyter.errors import VaultError
from prophecy_jupyter.paths import write_private

KEY_ENV = "PROPHECY_JUPYTER_KEY"
SOURCE_ENV = "PROPHECY_JUPYTER_KEY_SOURCE"
KEY_FILE = "vault.key"
STAGED_FILE = "vault.key.next"
KEYRING_SERVICE = "prophecy-jupyter"
KEYRING_KEY, KEYRING_STAGED = "vault-key", "vault-key-next"
KEY_BYTES = 32
SOURCES = ("env", "file", "keyring")


@dataclass(frozen=True)
class VaultKey:
    material: bytes
    origin: str

    @property
    def key_id(self) -> str:
        """A fingerprint that tells keys apart without revealing them."""
        return hashlib.sha256(b"prophecy-vault:" + self.material).hexdigest()[:16]

    def encoded(self) -> str:
        return base64.urlsafe_b64encode(self.material).decode()

    def derived(self, purpose: str) -> VaultKey:
        """A key of its own for ``purpose`` (HKDF-SHA256): who holds it cannot recover this one."""
        material = HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=purpose.encode()).derive(
            self.material
        )
        return VaultKey(material, f"{self.origin} ({purpose})")


def new_key() -> str:
    """A fresh key, base64 (urlsafe) encoded."""
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def decode_key(text: str, origin: str) -> VaultKey:
    try:
        material = base64.urlsafe_b64decode(text.strip().encode())
    except (binascii.Error, ValueError):
        raise VaultError(f"The vault key in {origin} is not base64.") from None
    if len(material) != KEY_BYTES:
        raise VaultError(f"The vault key in {origin} must be {KEY_BYTES} bytes, not {len(material)}.")
    return VaultKey(material, origin)


def _keyring():
    try:
        import keyring
    except ImportError:
        raise VaultError("The OS keyring needs the 'keyring' package: pip install keyring") from None
    return keyring


class KeyStore:
    """Where the key lives, and how a new one replaces it."""

    def __init__(self, data_dir: Path, source: str | None = None):
        self.data_dir = data_dir
        chosen = source or os.environ.get(SOURCE_ENV) or ("env" if os.environ.get(KEY_ENV) else "file")
        if chosen not in SOURCES:
            raise VaultError(f"Unknown vault key source {chosen!r}; use one of {', '.join(SOURCES)}.")
        self.source = chosen

    def load(self) -> VaultKey:
        """The current key; a file or keyring key is created on first use."""
        if self.source == "env":
            if not os.environ.get(KEY_ENV):
                raise VaultError(f"${KEY_ENV} is not set.")
            return decode_key(os.environ[KEY_ENV], f"${KEY_ENV}")
        if self.source == "keyring":
            ring = _keyring()
            stored = ring.get_password(KEYRING_SERVICE, KEYRING_KEY)
            if stored is None:
                stored = new_key()
                ring.set_password(KEYRING_SERVICE, KEYRING_KEY, stored)
            return decode_key(stored, "the OS keyring")
        path = self.data_dir / KEY_FILE
        if not path.exists():
            write_private(path, new_key().encode())
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise VaultError(f"{path} is readable by other users (mode {mode:o}); run chmod 600 on it.")
        return decode_key(path.read_text(), str(path))

    def staged(self) -> VaultKey | None:
        """A new key left by an interrupted rotation, if any."""
        if self.source == "keyring":
            stored = _keyring().get_password(KEYRING_SERVICE, KEYRING_STAGED)
            return decode_key(stored, "the OS keyring") if stored else None
        path = self.data_dir / STAGED_FILE
        return decode_key(path.read_text(), str(path)) if path.exists() else None

    def stage(self, key: VaultKey) -> None:
        """Keep the new key safe before anything is encrypted with it."""
        if self.source == "env":
            return
        if self.source == "keyring":
            _keyring().set_password(KEYRING_SERVICE, KEYRING_STAGED, key.encoded())
        else:
            write_private(self.data_dir / STAGED_FILE, key.encoded().encode())

    def promote(self, key: VaultKey) -> None:
        """Make the staged key the current one."""
        if self.source == "env":
            return
        if self.source == "keyring":
            ring = _keyring()
            ring.set_password(KEYRING_SERVICE, KEYRING_KEY, key.encoded())
            ring.delete_password(KEYRING_SERVICE, KEYRING_STAGED)
        else:
            os.replace(self.data_dir / STAGED_FILE, self.data_dir / KEY_FILE)

    def discard_staged(self) -> None:
        if self.source == "keyring":
            ring = _keyring()
            if ring.get_password(KEYRING_SERVICE, KEYRING_STAGED) is not None:
                ring.delete_password(KEYRING_SERVICE, KEYRING_STAGED)
        elif self.source == "file":
            (self.data_dir / STAGED_FILE).unlink(missing_ok=True)
