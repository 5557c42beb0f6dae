"""The secret store: AES-GCM entries, tamper detection, key handling, file modes."""

from __future__ import annotations

import base64
import json
import os
import stat

import pytest

from prophecy_jupyter.vault.keys import KEY_ENV, VaultError, load_key, new_key
from prophecy_jupyter.vault.store import SecretStore


def test_round_trip_and_nothing_in_clear(tmp_path):
    store = SecretStore(tmp_path, key=base64.urlsafe_b64decode(new_key()))
    store.put("fabric:prod", "s3cr3t-token-value")
    assert store.get("fabric:prod") == "s3cr3t-token-value"
    assert store.has("fabric:prod") and store.get("fabric:other") is None
    raw = (tmp_path / "vault.json").read_bytes()
    assert b"s3cr3t" not in raw
    assert stat.S_IMODE((tmp_path / "vault.json").stat().st_mode) == 0o600
    store.delete("fabric:prod")
    assert not store.has("fabric:prod")


def test_tampered_or_moved_entries_are_errors(tmp_path):
    store = SecretStore(tmp_path, key=base64.urlsafe_b64decode(new_key()))
    store.put("a", "first")
    store.put("b", "second")
    data = json.loads((tmp_path / "vault.json").read_text())
    sealed = bytearray(base64.b64decode(data["entries"]["a"]))
    sealed[-1] ^= 1
    data["entries"]["a"] = base64.b64encode(bytes(sealed)).decode()
    data["entries"]["c"] = data["entries"]["b"]
    (tmp_path / "vault.json").write_text(json.dumps(data))
    with pytest.raises(VaultError, match="failed its integrity check"):
        store.get("a")
    with pytest.raises(VaultError, match="'c' failed its integrity check"):
        store.get("c")
    assert store.get("b") == "second"


def test_another_key_cannot_read(tmp_path):
    SecretStore(tmp_path, key=base64.urlsafe_b64decode(new_key())).put("x", "value")
    with pytest.raises(VaultError):
        SecretStore(tmp_path, key=base64.urlsafe_b64decode(new_key())).get("x")


def test_key_file_is_created_private_and_checked(tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    key = load_key(tmp_path)
    path = tmp_path / "vault.key"
    assert len(key) == 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_key(tmp_path) == key
    os.chmod(path, 0o644)
    with pytest.raises(VaultError, match="chmod 600"):
        load_key(tmp_path)


def test_key_from_the_environment(tmp_path, monkeypatch):
    key = new_key()
    monkeypatch.setenv(KEY_ENV, key)
    assert load_key(tmp_path) == base64.urlsafe_b64decode(key)
    assert not (tmp_path / "vault.key").exists()
    monkeypatch.setenv(KEY_ENV, "too-short")
    with pytest.raises(VaultError):
        load_key(tmp_path)
