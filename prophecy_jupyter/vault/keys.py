"""The vault key: from ``PROPHECY_JUPYTER_KEY``, or a 0600 key file under the data dir."""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import stat
from pathlib import Path

from prophecy_jupyter.paths import write_private

KEY_ENV = "PROPHECY_JUPYTER_KEY"
KEY_FILE = "vault.key"
KEY_BYTES = 32


class VaultError(Exception):
    """The vault cannot be opened or an entry cannot be decrypted."""


def _decode(text: str, origin: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text.strip().encode())
    except (binascii.Error, ValueError):
        raise VaultError(f"The vault key in {origin} is not base64.") from None
    if len(key) != KEY_BYTES:
        raise VaultError(f"The vault key in {origin} must be {KEY_BYTES} bytes, not {len(key)}.")
    return key


def new_key() -> str:
    """A fresh key, base64 (urlsafe) encoded."""
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def load_key(data_dir: Path) -> bytes:
    """The vault key; a key file is created (0600) on first use when no key is configured."""
    if os.environ.get(KEY_ENV):
        return _decode(os.environ[KEY_ENV], f"${KEY_ENV}")
    path = data_dir / KEY_FILE
    if not path.exists():
        write_private(path, new_key().encode())
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise VaultError(f"{path} is readable by other users (mode {mode:o}); run chmod 600 on it.")
    return _decode(path.read_text(), str(path))
