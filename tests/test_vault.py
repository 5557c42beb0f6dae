"""The vault: keys from the environment, a key file or the OS keyring; sealed credentials; rotation."""

from __future__ import annotations

import os
import sqlite3
import stat
from dataclasses import dataclass

import pytest

from prophecy_jupyter.errors import VaultError
from prophecy_jupyter.services.credentials import CredentialService
from prophecy_jupyter.store.database import Database, sqlite_url
from prophecy_jupyter.vault.keys import KEY_ENV, SOURCE_ENV, KeyStore, decode_key, new_key


@dataclass(frozen=True)
class Target:
    """What a credential is for (a fabric or project, as the vault sees it)."""

    scope: str
    endpoint: str

    @property
    def ref(self) -> str:
        return self.scope


F1 = Target("fabric:1", "https://livy-one.example.com")
F2 = Target("fabric:2", "https://livy-two.example.com")


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.delenv(SOURCE_ENV, raising=False)
    db = Database.open(sqlite_url(tmp_path))
    yield tmp_path, db
    db.close()


def test_round_trip_write_only_and_nothing_in_clear(store):
    directory, db = store
    vault = CredentialService(db, KeyStore(directory))
    assert not vault.status("ana", F1).set
    vault.set("ana", F1, "s3cr3t-token-value")
    assert vault.status("ana", F1).set and vault.secret("ana", F1) == "s3cr3t-token-value"
    assert vault.secret("bob", F1) is None, "each user brings their own"
    for path in directory.iterdir():
        assert b"s3cr3t" not in path.read_bytes(), path
    assert stat.S_IMODE((directory / "vault.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((directory / "prophecy.db").stat().st_mode) == 0o600
    assert vault.delete("ana", F1) and not vault.status("ana", F1).set


def test_tampered_or_moved_secrets_are_errors(store):
    directory, db = store
    vault = CredentialService(db, KeyStore(directory))
    vault.set("ana", F1, "first")
    vault.set("ana", F2, "second")
    raw = sqlite3.connect(directory / "prophecy.db")
    sealed = bytearray(raw.execute("select sealed from credentials where scope='fabric:1'").fetchone()[0])
    sealed[-1] ^= 1
    raw.execute("update credentials set sealed=? where scope='fabric:1'", (bytes(sealed),))
    raw.execute("update credentials set username='bob' where scope='fabric:2'")
    raw.commit()
    with pytest.raises(VaultError, match="failed its integrity check"):
        vault.secret("ana", F1)
    with pytest.raises(VaultError, match="failed its integrity check"):
        vault.secret("bob", F2)
    # the endpoint a secret was given for is sealed with it: rewriting it in the store is caught
    vault.set("ana", F2, "second")
    raw.execute("update credentials set endpoint='https://evil.example.com' where scope='fabric:2'")
    raw.commit()
    with pytest.raises(VaultError, match="failed its integrity check"):
        vault.secret("ana", Target("fabric:2", "https://evil.example.com"))


def test_another_key_is_named_not_guessed(store, monkeypatch):
    directory, db = store
    CredentialService(db, KeyStore(directory)).set("ana", F1, "value")
    monkeypatch.setenv(KEY_ENV, new_key())
    with pytest.raises(VaultError, match="encrypted with another vault key"):
        CredentialService(db, KeyStore(directory)).secret("ana", F1)


def test_key_file_is_private_and_checked(store):
    directory, _ = store
    key = KeyStore(directory).load()
    assert KeyStore(directory).load() == key and key.origin.endswith("vault.key")
    os.chmod(directory / "vault.key", 0o644)
    with pytest.raises(VaultError, match="chmod 600"):
        KeyStore(directory).load()


def test_key_from_the_environment(store, monkeypatch):
    directory, _ = store
    text = new_key()
    monkeypatch.setenv(KEY_ENV, text)
    assert KeyStore(directory).load().material == decode_key(text, "test").material
    assert not (directory / "vault.key").exists()
    monkeypatch.setenv(KEY_ENV, "too-short")
    with pytest.raises(VaultError, match=r"must be 32 bytes|not base64"):
        KeyStore(directory).load()


def test_key_in_the_os_keyring(store, monkeypatch, tmp_path):
    directory, db = store
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "keyring-home"))
    monkeypatch.setenv(SOURCE_ENV, "keyring")
    vault = CredentialService(db, KeyStore(directory))
    vault.set("ana", F1, "in-the-keyring")
    assert not (directory / "vault.key").exists()
    assert CredentialService(db, KeyStore(directory)).secret("ana", F1) == "in-the-keyring"
    vault.rotate(decode_key(new_key(), "test"))
    assert CredentialService(db, KeyStore(directory)).secret("ana", F1) == "in-the-keyring"


def test_rotation_reencrypts_everything_under_the_new_key(store):
    directory, db = store
    vault = CredentialService(db, KeyStore(directory))
    for n in range(5):
        vault.set(f"user{n}", F1, f"secret-{n}")
    old_id = vault.key_id
    new = decode_key(new_key(), "test")
    assert vault.rotate(new) == 5
    reopened = CredentialService(db, KeyStore(directory))
    assert reopened.key_id == new.key_id != old_id
    assert [reopened.secret(f"user{n}", F1) for n in range(5)] == [f"secret-{n}" for n in range(5)]
    assert not (directory / "vault.key.next").exists()


def test_an_interrupted_rotation_is_finished_or_dropped(store):
    directory, db = store
    vault = CredentialService(db, KeyStore(directory))
    vault.set("ana", F1, "kept")
    staged = decode_key(new_key(), "staged")
    # crashed after staging, before re-encrypting: the staged key is dropped
    KeyStore(directory).stage(staged)
    assert CredentialService(db, KeyStore(directory)).secret("ana", F1) == "kept"
    assert not (directory / "vault.key.next").exists()
    # crashed after re-encrypting, before promoting: the staged key becomes the key
    keys = KeyStore(directory)
    keys.promote = lambda key: None  # the process dies before this step
    CredentialService(db, keys).rotate(staged)
    assert (directory / "vault.key.next").exists()
    recovered = CredentialService(db, KeyStore(directory))
    assert recovered.key_id == staged.key_id and recovered.secret("ana", F1) == "kept"
    assert not (directory / "vault.key.next").exists()
