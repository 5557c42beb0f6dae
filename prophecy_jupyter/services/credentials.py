"""Per-user secrets (fabric passwords and tokens, Git PATs), sealed in the store, write-only.

Nothing here ever returns a secret to a surface: :meth:`CredentialService.status` says whether
one is set; only engines and git get the secret itself, through :meth:`CredentialService.secret`.

A secret belongs to a user and a *target*: a fabric or a project, which has a ``scope``
(``fabric:<id>``, ``project:<id>``) and an ``endpoint`` (the Livy URL, workspace host, Snowflake
account, Git URL the secret is sent to). The secret is sealed together with all three. When the
target's endpoint changes (an admin pointed the fabric elsewhere), the secret is not used until
its user confirms it for the new endpoint or sets it again.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import delete, select

from prophecy_jupyter.errors import EndpointChanged, VaultError
from prophecy_jupyter.store.database import Database
from prophecy_jupyter.store.models import Credential, utcnow
from prophecy_jupyter.vault.keys import KeyStore, VaultKey
from prophecy_jupyter.vault.sealing import Sealer

MAX_SECRET_BYTES = 64 * 1024


class CredentialTarget(Protocol):
    """What a credential is for: a fabric or a project."""

    @property
    def scope(self) -> str: ...

    @property
    def endpoint(self) -> str: ...

    @property
    def ref(self) -> str: ...


@dataclass(frozen=True)
class CredentialStatus:
    set: bool
    updated_at: datetime.datetime | None = None
    given_for: str | None = None
    """Where the secret was given for, when that is no longer the target's endpoint."""

    def to_json(self) -> dict:
        return {
            "set": self.set,
            "updated_at": self.updated_at.isoformat() + "Z" if self.updated_at else None,
            "endpoint_changed": self.given_for is not None,
            "given_for": self.given_for,
        }


def fabric_scope(fabric_id: str) -> str:
    return f"fabric:{fabric_id}"


def _context(username: str, scope: str, endpoint: str | None) -> str:
    """What a sealed secret is bound to (a credential from before endpoints: user and scope)."""
    return f"{username}\x00{scope}" if endpoint is None else f"{username}\x00{scope}\x00{endpoint}"


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
            if self._sealed_under(staged):
                self.keys.promote(staged)
                return staged
            self.keys.discard_staged()
        return key

    def _sealed_under(self, key: VaultKey) -> bool:
        """Whether any credential is sealed under ``key`` (a rotation has moved them there)."""
        with self.db.transaction() as session:
            found = session.scalar(
                select(Credential.username).where(Credential.key_id == key.key_id).limit(1)
            )
        return found is not None

    def _fresh(self) -> Sealer:
        """The sealer of the key in use now: another process (``jupyter prophecy vault rotate``)
        may have rotated it since, or be promoting a key it has already re-encrypted under."""
        key = self.keys.load()
        staged = self.keys.staged()
        if staged is not None and staged.key_id != key.key_id and self._sealed_under(staged):
            key = staged
        if key.key_id != self._sealer.key.key_id:
            self._sealer = Sealer(key)
        return self._sealer

    @property
    def key(self) -> VaultKey:
        """The vault key in use (for keys derived from it)."""
        return self._fresh().key

    @property
    def key_id(self) -> str:
        return self._fresh().key.key_id

    def set(self, username: str, target: CredentialTarget, secret: str) -> CredentialStatus:
        """Store (or replace) the user's secret for ``target``, bound to its current endpoint."""
        if not secret:
            raise VaultError("The secret is empty.")
        if len(secret.encode()) > MAX_SECRET_BYTES:
            raise VaultError(f"The secret is larger than {MAX_SECRET_BYTES // 1024} KiB.")
        self._store(username, target.scope, target.endpoint, secret.encode())
        return CredentialStatus(True, self.status(username, target).updated_at)

    def _store(self, username: str, scope: str, endpoint: str, plain: bytes) -> None:
        sealer = self._fresh()
        sealed = sealer.seal(plain, _context(username, scope, endpoint))
        now = utcnow()
        with self.db.transaction() as session:
            row = session.get(Credential, (username, scope))
            if row is None:
                row = Credential(username=username, scope=scope)
                session.add(row)
            row.sealed, row.endpoint, row.key_id, row.updated_at = sealed, endpoint, sealer.key.key_id, now
        self._changed(scope)

    def status(self, username: str, target: CredentialTarget) -> CredentialStatus:
        with self.db.transaction() as session:
            row = session.get(Credential, (username, target.scope))
            if row is None:
                return CredentialStatus(False)
            moved = row.endpoint if row.endpoint not in (None, target.endpoint) else None
            return CredentialStatus(True, row.updated_at, moved)

    def secret(self, username: str, target: CredentialTarget) -> str | None:
        """The secret for an engine or git: None when none is set; EndpointChanged when it was
        given for another endpoint; VaultError when it cannot be decrypted (never dropped)."""
        opened = self._open(username, target.scope)
        if opened is None:
            return None
        endpoint, plain = opened
        if endpoint is not None and endpoint != target.endpoint:
            raise EndpointChanged(
                f"'{target.ref}' now points to {target.endpoint}, but you gave your credential for "
                f"{endpoint}; it is not sent anywhere else. Confirm it for the new address "
                f"(`jupyter prophecy credentials confirm {target.ref}`, or Confirm in the Prophecy "
                "sidebar) or set it again."
            )
        return plain.decode()

    def confirm(self, username: str, target: CredentialTarget) -> CredentialStatus:
        """The user agrees that their secret goes to the target's current endpoint."""
        opened = self._open(username, target.scope)
        if opened is None:
            raise VaultError(f"You have no credential for '{target.ref}' to confirm; set one.")
        self._store(username, target.scope, target.endpoint, opened[1])
        return self.status(username, target)

    def _open(self, username: str, scope: str) -> tuple[str | None, bytes] | None:
        with self.db.transaction() as session:
            row = session.get(Credential, (username, scope))
            if row is None:
                return None
            sealed, key_id, endpoint = row.sealed, row.key_id, row.endpoint
        sealer = self._fresh()
        if key_id != sealer.key.key_id:
            raise VaultError(
                f"Your credential for {scope} was encrypted with another vault key ({key_id}); "
                "restore that key or set the credential again."
            )
        return endpoint, sealer.open(sealed, _context(username, scope, endpoint), f"credential for {scope}")

    def delete(self, username: str, target: CredentialTarget) -> bool:
        with self.db.transaction() as session:
            result = session.execute(
                delete(Credential).where(Credential.username == username, Credential.scope == target.scope)
            )
        self._changed(target.scope)
        return bool(result.rowcount)

    def delete_scope(self, scope: str) -> int:
        """Forget every user's credential for a scope (its fabric or project is gone)."""
        with self.db.transaction() as session:
            deleted = session.execute(delete(Credential).where(Credential.scope == scope)).rowcount
        self._changed(scope)
        return deleted

    def bind_unbound(self, target_of: Callable[[str], CredentialTarget | None]) -> int:
        """Bind credentials stored before endpoints were recorded to their target's endpoint
        (``target_of(old scope)``; None: the target is gone, and so is the credential). One that
        does not open with the current key is left as it is (using it says why). Returns how many
        were bound or dropped."""
        done, sealer = 0, self._fresh()
        with self.db.transaction() as session:
            rows = list(session.scalars(select(Credential).where(Credential.endpoint.is_(None))))
            for row in rows:
                target = target_of(row.scope)
                if target is None:
                    session.delete(row)
                    done += 1
                    continue
                try:
                    if row.key_id != sealer.key.key_id:
                        raise VaultError("another key")
                    plain = sealer.open(
                        row.sealed, _context(row.username, row.scope, None), f"credential for {row.scope}"
                    )
                except VaultError:
                    continue
                done += 1
                session.delete(row)
                session.flush()
                session.add(
                    Credential(
                        username=row.username,
                        scope=target.scope,
                        endpoint=target.endpoint,
                        sealed=sealer.seal(plain, _context(row.username, target.scope, target.endpoint)),
                        key_id=sealer.key.key_id,
                        updated_at=row.updated_at,
                    )
                )
        return done

    def rotate(self, new_key: VaultKey) -> int:
        """Re-encrypt every credential under ``new_key``, all or nothing; returns how many.

        The new key is staged first, so a crash at any point leaves a key that opens the data.
        """
        old = self._fresh()
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
                    _reseal(row, old, new)
            # A server that stored one meanwhile sealed it under the old key: move it too. From
            # now on the others see credentials under the staged key, and take it.
            with self.db.transaction() as session:
                for row in session.scalars(select(Credential).where(Credential.key_id == old.key.key_id)):
                    _reseal(row, old, new)
        except BaseException:
            self.keys.discard_staged()
            raise
        self.keys.promote(new_key)
        self._sealer = new
        return len(rows)


def _reseal(row: Credential, old: Sealer, new: Sealer) -> None:
    context = _context(row.username, row.scope, row.endpoint)
    plain = old.open(row.sealed, context, f"credential for {row.scope}")
    row.sealed, row.key_id = new.seal(plain, context), new.key.key_id
