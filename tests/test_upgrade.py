"""An upgrade from the first release keeps its fabrics and secrets (``fabrics.json`` and
``vault.json`` under the data dir), written here byte for byte as that release wrote them."""

from __future__ import annotations

import base64
import json
import logging
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from prophecy_jupyter.services import legacy_import
from prophecy_jupyter.services.runtime import build_services
from prophecy_jupyter.vault.keys import decode_key

USER = "ana"


def first_release_files(directory, secrets: dict[str, str]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    fabrics = {
        "prod": {
            "name": "prod",
            "kind": "livy",
            "url": "https://livy.example.com",
            "auth": "basic",
            "username": "ana",
            "headers": {"X-Team": "etl"},
            "ca_bundle": None,
            "conf": {"spark.sql.shuffle.partitions": "8"},
            "job_sizes": {"M": {"driverMemory": "4g"}},
            "environment": "prod",
        },
        "open": {
            "name": "open",
            "kind": "livy",
            "url": "http://127.0.0.1:8998",
            "auth": "none",
            "username": None,
            "headers": {},
            "ca_bundle": None,
            "conf": {},
            "job_sizes": {},
            "environment": "dev",
        },
    }
    (directory / "fabrics.json").write_text(json.dumps({"version": 1, "fabrics": fabrics}))
    aead = AESGCM(decode_key(os.environ["PROPHECY_JUPYTER_KEY"], "test").material)
    entries = {}
    for name, secret in secrets.items():
        nonce = os.urandom(12)
        entries[name] = base64.b64encode(nonce + aead.encrypt(nonce, secret.encode(), name.encode())).decode()
    (directory / "vault.json").write_text(json.dumps({"version": 1, "entries": entries}))


def test_first_release_fabrics_and_secrets_move_into_the_store(data_dir):
    first_release_files(data_dir, {"fabric:prod": "prod-password-81b2"})
    services = build_services(data_dir, bootstrap_user=USER)
    try:
        prod = services.fabrics.get(USER, "default/prod")
        assert prod.settings == {
            "url": "https://livy.example.com",
            "auth": "basic",
            "username": "ana",
            "headers": {"X-Team": "etl"},
        }
        assert (prod.conf, prod.job_sizes, prod.environment) == (
            {"spark.sql.shuffle.partitions": "8"},
            {"M": {"driverMemory": "4g"}},
            "prod",
        )
        assert services.fabrics.secret(USER, prod) == "prod-password-81b2"
        assert services.fabrics.get(USER, "open").settings["url"] == "http://127.0.0.1:8998"
    finally:
        services.close()
    assert not (data_dir / "fabrics.json").exists() and (data_dir / "fabrics.json.imported").exists()
    assert (data_dir / "vault.json.imported").exists()
    reopened = build_services(data_dir, bootstrap_user=USER)
    try:
        assert [f.ref for f in reopened.fabrics.list(USER)] == ["local", "default/open", "default/prod"]
    finally:
        reopened.close()


def test_a_first_release_secret_under_another_key_is_reported_and_the_rest_moves(
    data_dir, caplog, monkeypatch
):
    # sparkmagic (imported by earlier tests) calls dictConfig, which disables existing loggers
    monkeypatch.setattr(logging.getLogger(legacy_import.__name__), "disabled", False)
    caplog.set_level(logging.INFO, logger=legacy_import.__name__)
    first_release_files(data_dir, {})
    aead = AESGCM(os.urandom(32))
    nonce = os.urandom(12)
    sealed = base64.b64encode(nonce + aead.encrypt(nonce, b"other-key-secret", b"fabric:prod")).decode()
    (data_dir / "vault.json").write_text(json.dumps({"version": 1, "entries": {"fabric:prod": sealed}}))
    services = build_services(data_dir, bootstrap_user=USER)
    try:
        prod = services.fabrics.get(USER, "prod")
        assert services.credentials.status(USER, prod.scope).set is False
        assert "does not open with the current key" in caplog.text and "other-key-secret" not in caplog.text
    finally:
        services.close()
