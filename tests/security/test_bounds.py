"""Bounds a shared server keeps whatever a user asks, and state that stays private: rows per table
and bytes waiting per user, file modes under the data dir, Spark's RPC secret on the shared JVM, a
key rotated by another process, DNS lookups that hang, credentials the gateway cannot decode."""

from __future__ import annotations

import socket
import stat
import time

import psutil
import pytest
import requests

from prophecy_jupyter.errors import LimitReached
from prophecy_jupyter.kinds import network
from prophecy_jupyter.services import connection_test
from prophecy_jupyter.services.fabrics import local_fabric
from prophecy_jupyter.services.local_gateway import LocalGateway
from prophecy_jupyter.services.runtime import build_services
from prophecy_jupyter.services.settings import ServiceSettings
from prophecy_jupyter.vault.keys import KeyStore, decode_key, new_key
from tests.conftest import USER, open_services


@pytest.mark.spark
def test_a_table_is_capped_in_rows_and_a_user_in_bytes_waiting(data_dir, gateway):
    settings = ServiceSettings(max_table_rows=1000, max_buffered_bytes=1, fetched_tables_kept=0.0)
    services = open_services(data_dir, gateway.url, gateway.token, settings)
    try:
        sessions = services.sessions
        run = sessions.submit_table(USER, "big.ipynb", "gw", "spark.range(5000)", -1)
        assert run.wait(120) and run.state == "finished", run.result
        assert run.limit == 1000 and run.payload.header.rows == 1000 and run.payload.header.truncated
        assert any("at most 1,000 rows" in note for note in run.notes)
        with pytest.raises(LimitReached, match="waiting on the server"):
            sessions.submit_table(USER, "big.ipynb", "gw", "spark.range(10)", 10)
        sessions.table_data(run)  # the kernel fetched it: it goes at the next housekeeping tick
        deadline = time.monotonic() + 10
        while run.payload is not None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert run.payload is None and sessions.buffered_bytes(USER) == 0
        again = sessions.submit_table(USER, "big.ipynb", "gw", "spark.range(10)", 10)
        assert again.wait(120) and again.state == "finished"
    finally:
        services.close()


@pytest.mark.spark
def test_the_shared_jvm_authenticates_its_rpc_without_a_secret_on_any_command_line(
    new_session, gateway, livy
):
    session = new_session()
    statement = livy.post(
        f"{gateway.url}/sessions/{session}/statements",
        json={"code": "print(spark.conf.get('spark.authenticate'))"},
    ).json()
    deadline = time.monotonic() + 60
    while statement["state"] not in ("available", "error") and time.monotonic() < deadline:
        time.sleep(0.2)
        statement = livy.get(f"{gateway.url}/sessions/{session}/statements/{statement['id']}").json()
    assert statement["output"]["data"]["text/plain"].strip() == "true"
    for process in psutil.Process(gateway.process.pid).children(recursive=True):
        try:
            command = " ".join(process.cmdline())
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue  # a short-lived child that has ended
        assert "spark.authenticate.secret" not in command


def test_the_data_dir_and_every_file_in_it_are_private(tmp_path, monkeypatch):
    directory = tmp_path / "prophecy-data"
    directory.mkdir(mode=0o755)
    directory.chmod(0o755)
    monkeypatch.setenv("PROPHECY_JUPYTER_DATA_DIR", str(directory))
    monkeypatch.delenv("PROPHECY_JUPYTER_KEY", raising=False)
    services = build_services(directory, bootstrap_user=USER)
    gateway = LocalGateway(directory, ServiceSettings())
    try:
        fabric = services.fabrics.create(
            USER,
            "default",
            {
                "name": "etl",
                "kind": "livy",
                "settings": {"url": "https://livy.example.com", "auth": "bearer"},
            },
        )
        services.credentials.set(USER, fabric, "a-token")
        services.cache.put(USER, "project", "draft:x", b"code")
        gateway.endpoint()  # its log goes under the data dir
    finally:
        gateway.stop()
        services.close()
    from prophecy_jupyter.paths import data_dir

    assert data_dir() == directory
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    files = [p for p in directory.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"prophecy.db", "vault.key"} and any(p.suffix == ".log" for p in files)
    for path in [directory, *directory.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert not mode & 0o077, f"{path} is {mode:o}"
    # SQLite's companions take the database's mode
    reopened = build_services(directory, bootstrap_user=USER)
    try:
        reopened.credentials.set(USER, fabric, "another-token")
        for name in ("prophecy.db-wal", "prophecy.db-shm"):
            if (directory / name).exists():
                assert stat.S_IMODE((directory / name).stat().st_mode) == 0o600, name
    finally:
        reopened.close()


def test_a_key_rotated_by_another_process_loses_nothing(data_dir, monkeypatch):
    monkeypatch.delenv("PROPHECY_JUPYTER_KEY")  # the key file, which `vault rotate` can replace
    server = build_services(data_dir, bootstrap_user=USER)
    livy = {"kind": "livy", "settings": {"url": "https://livy.example.com", "auth": "bearer"}}
    before = server.fabrics.create(USER, "default", {"name": "before", **livy})
    server.credentials.set(USER, before, "set-before-rotation")
    cli = build_services(data_dir, bootstrap_user=USER)  # `jupyter prophecy vault rotate`
    assert cli.credentials.rotate(decode_key(new_key(), "test")) == 1
    cli.close()
    after = server.fabrics.create(USER, "default", {"name": "after", **livy})
    server.credentials.set(USER, after, "set-after-rotation")  # the running server, not restarted
    assert server.fabrics.secret(USER, before) == "set-before-rotation"
    server.close()
    restarted = build_services(data_dir, bootstrap_user=USER)
    try:
        assert restarted.credentials.key_id == KeyStore(data_dir).load().key_id
        assert restarted.fabrics.secret(USER, before) == "set-before-rotation"
        assert restarted.fabrics.secret(USER, after) == "set-after-rotation"
    finally:
        restarted.close()


def test_a_dns_lookup_that_hangs_is_given_up(monkeypatch):
    monkeypatch.setattr(network, "DNS_TIMEOUT", 0.5)
    monkeypatch.setattr(socket, "getaddrinfo", lambda *args, **kwargs: time.sleep(5))
    fabric = local_fabric().model_copy(
        update={"kind": "livy", "settings": {"url": "https://livy.example.com", "auth": "none"}}
    )
    started = time.monotonic()
    report = connection_test.test_connection(fabric, None)
    assert report.stage == "dns" and "did not resolve within" in report.message
    assert time.monotonic() - started < 3


def test_the_gateway_answers_any_credential_with_401_not_500(gateway):
    for header in ("Bearer ünïcode-tökén", "Basic " + "w7w6OsO8".ljust(8, "=")):
        response = requests.get(
            f"{gateway.url}/sessions", headers={"Authorization": header.encode("utf-8")}, timeout=10
        )
        assert response.status_code == 401, response.text
