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
        assert services.credentials.status(USER, prod).set is False
        assert "does not open with the current key" in caplog.text and "other-key-secret" not in caplog.text
    finally:
        services.close()


def test_a_store_from_before_public_ids_keeps_its_credentials_bound_to_their_endpoints(data_dir):
    """Revision 0002 had integer fabric and project ids, and secrets sealed with user and scope only."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine, text

    from prophecy_jupyter.store.database import MIGRATIONS, sqlite_url
    from prophecy_jupyter.vault.keys import KeyStore
    from prophecy_jupyter.vault.sealing import Sealer

    data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(sqlite_url(data_dir))
    with engine.begin() as connection:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = connection
        command.upgrade(config, "0002")
        sealer = Sealer(KeyStore(data_dir).load())
        rows = [
            "INSERT INTO teams (id, name, created_at) VALUES (1, 'default', '2026-01-01')",
            "INSERT INTO memberships (team_id, username, role) VALUES (1, 'ana', 'admin')",
            "INSERT INTO fabrics (id, team_id, name, kind, settings, conf, environment, created_by,"
            " created_at, updated_at) VALUES (7, 1, 'prod', 'livy', :livy, :conf, 'prod', 'ana',"
            " '2026-01-01', '2026-01-01')",
            "INSERT INTO projects (id, team_id, name, url, provider, default_branch, created_by, created_at)"
            " VALUES (3, 1, 'etl', 'https://git.example.com/etl.git', 'github', 'main', 'ana', '2026-01-01')",
            "INSERT INTO sessions (id, username, notebook, fabric, state, spec, created_at, last_used)"
            " VALUES ('s1', 'ana', 'n.ipynb', '7', 'ended', '{}', '2026-01-01', '2026-01-01')",
        ]
        livy = json.dumps(
            {
                "url": "http://livy.example.com",
                "auth": "bearer",
                "headers": {"Authorization": "Basic dGVhbTpzaGFyZWQ=", "X-Team": "etl"},
            }
        )
        conf = json.dumps({"spark.x": "1", "spark.hadoop.fs.s3a.secret.key": "shared-s3-secret"})
        for row in rows:
            connection.execute(text(row), {"livy": livy, "conf": conf} if ":livy" in row else {})
        for scope, secret in (
            ("fabric:7", "livy-secret-1"),
            ("project:3", '{"token": "ghp_1"}'),
            ("fabric:99", "x"),
        ):
            connection.execute(
                text("INSERT INTO credentials VALUES ('ana', :scope, :sealed, :key_id, '2026-01-01')"),
                {
                    "scope": scope,
                    "sealed": sealer.seal(secret.encode(), f"ana\x00{scope}"),
                    "key_id": sealer.key.key_id,
                },
            )
    engine.dispose()

    services = build_services(data_dir, bootstrap_user=USER)
    try:
        prod = services.fabrics.get("ana", "prod")
        project = services.projects.get("ana", "etl")
        assert len(prod.id) == 32 and len(project.id) == 32
        # fabrics hold no secrets: those an admin had put in headers or conf are gone; plain http
        # that worked before now says so explicitly
        assert prod.settings["headers"] == {"X-Team": "etl"} and prod.conf == {"spark.x": "1"}
        assert prod.settings["allow_http"] is True
        assert services.fabrics.secret("ana", prod) == "livy-secret-1"
        assert json.loads(services.credentials.secret("ana", project)) == {"token": "ghp_1"}
        with services.db.transaction() as session:
            scopes = sorted(s for (s,) in session.execute(text("SELECT scope FROM credentials")))
            fabrics_of_sessions = [f for (f,) in session.execute(text("SELECT fabric FROM sessions"))]
        assert scopes == sorted([prod.scope, project.scope]), "bound to the new ids; the orphan is gone"
        assert fabrics_of_sessions == [prod.id]
    finally:
        services.close()
