"""Per-user secrets (fabric passwords and tokens, Git PATs), sealed in the store, write-only.

Nothing here ever returns a secret to a surface: :meth:`CredentialService.status` says whether
one is set; only engines get the secret itself, through :meth:`CredentialService.secret`.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import delete, select

from prophecy_jupyter.store.database import Database
from prophecy_jupyter.store.models import Credential, utcnow
from prophecy_jupyter.vault.keys import KeyStore, VaultError, VaultKey
from prophecy_jupyter.vault.sealing import Sealer

MAX_SECRET_BYTES = 64 * 1024


@dataclass(frozen=True)
class CredentialStatus:
    set: bool
    updated_at: datetime.datetime | None = None

    def to_json(self) -> dict:
        return {"set": self.set, "updated_at": self.updated_at.isoformat() + "Z" if self.updated_at else None}


def fabric_scope(fabric_id: str) -> str:
    return f"fabric:{fabric_id}"


def _context(username: str, scope: str) -> str:
    return f"{username}\x00{scope}"


class CredentialService:
    """The sealed credentials table and the key that opens it."""

    def __init__(self, db: Database, keys: KeyStore):
        self.db = db
        self.keys = keys
        self._sealer = Sealer(self._current_key())
        self._listeners: list[Callable[[str], None]] = []

    def on_change(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(scope)`` whenever a credential of that scope is set or deleted here."""
        self._listeners.append(listener)

    def _changed(self, scope: str) -> None:
        for listener in self._listeners:
            listener(scope)

    def _current_key(self) -> VaultKey:
        """The key, finishing (or dropping) a rotation that was interrupted."""
        key = self.keys.load()
        staged = self.keys.staged()
        if staged is not None:
            with self.db.transaction() as session:
                moved = session.scalar(
                    select(Credential.username).where(Credential.key_id == staged.key_id).limit(1)
                )
            if moved is not None:
                self.keys.promote(staged)
                return staged
            self.keys.discard_staged()
        return key

    @property
    def key_id(self) -> str:
        return self._sealer.key.key_id

    def set(self, username: str, scope: str, secret: str) -> CredentialStatus:
        """Store (or replace) a secret."""
        if not secret:
            raise VaultError("The secret is empty.")
        if len(secret.encode()) > MAX_SECRET_BYTES:
            raise VaultError(f"The secret is larger than {MAX_SECRET_BYTES // 1024} KiB.")
        sealed = self._sealer.seal(secret.encode(), _context(username, scope))
        now = utcnow()
        with self.db.transaction() as session:
            row = session.get(Credential, (username, scope))
            if row is None:
                session.add(
                    Credential(
                        username=username, scope=scope, sealed=sealed, key_id=self.key_id, updated_at=now
                    )
                )
            else:
                row.sealed, row.key_id, row.updated_at = sealed, self.key_id, now
        self._changed(scope)
        return CredentialStatus(True, now)

    def status(self, username: str, scope: str) -> CredentialStatus:
        with self.db.transaction() as session:
            row = session.get(Credential, (username, scope))
            return CredentialStatus(row is not None, row.updated_at if row else None)

    def secret(self, username: str, scope: str) -> str | None:
        """The secret for an engine; VaultError when it cannot be decrypted (never dropped)."""
        with self.db.transaction() as session:
            row = session.get(Credential, (username, scope))
            if row is None:
                return None
            sealed, key_id = row.sealed, row.key_id
        if key_id != self.key_id:
            raise VaultError(
                f"Your credential for {scope} was encrypted with another vault key ({key_id}); "
                "restore that key or set the credential again."
            )
        return self._sealer.open(sealed, _context(username, scope), f"credential for {scope}").decode()

    def delete(self, username: str, scope: str) -> bool:
        with self.db.transaction() as session:
            result = session.execute(
                delete(Credential).where(Credential.username == username, Credential.scope == scope)
            )
        self._changed(scope)
        return bool(result.rowcount)

    def delete_scope(self, scope: str) -> int:
        """Forget every user's credential for a scope (its fabric is gone)."""
        with self.db.transaction() as session:
            deleted = session.execute(delete(Credential).where(Credential.scope == scope)).rowcount
        self._changed(scope)
        return deleted

    def rotate(self, new_key: VaultKey) -> int:
        """Re-encrypt every credential under ``new_key``, all or nothing; returns how many.

        The new key is staged first, so a crash at any point leaves a key that opens the data.
        """
        old = self._sealer
        new = Sealer(new_key)
        self.keys.stage(new_key)
        try:
            with self.db.transaction() as session:
                rows = list(session.scalars(select(Credential)))
                for row in rows:
                    if row.key_id != old.key.key_id:
                        raise VaultError(
                            f"The credential for {row.scope} of {row.username} is under another key "
                            f"({row.key_id}); nothing was rotated."
                        )
                    context = _context(row.username, row.scope)
                    plain = old.open(row.sealed, context, f"credential for {row.scope}")
                    row.sealed, row.key_id = new.seal(plain, context), new_key.key_id
        except BaseException:
            self.keys.discard_staged()
            raise
        self.keys.promote(new_key)
        self._sealer = new
        return len(rows)
