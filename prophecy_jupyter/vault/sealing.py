"""AES-GCM sealing: each sealed value is bound to its owner and purpose (associated data)."""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from prophecy_jupyter.errors import VaultError
from prophecy_jupyter.vault.keys import VaultKey

NONCE_BYTES = 12


class Sealer:
    """Encrypts and decrypts with one key; a value moved, altered or sealed by another key fails."""

    def __init__(self, key: VaultKey):
        self.key = key
        self._aead = AESGCM(key.material)

    def seal(self, plaintext: bytes, context: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext, context.encode())

    def open(self, sealed: bytes, context: str, what: str) -> bytes:
        try:
            return self._aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], context.encode())
        except (InvalidTag, ValueError):
            raise VaultError(
                f"The stored {what} failed its integrity check (tampered, or encrypted with another "
                "key). Set it again."
            ) from None
