"""Shared fixtures: one gateway JVM for the whole run, and a private data dir per test."""

from __future__ import annotations

import os

import pytest
import requests

from prophecy_jupyter.environment import local_username
from prophecy_jupyter.services.runtime import Services, build_services
from prophecy_jupyter.services.settings import ServiceSettings
from prophecy_jupyter.vault.keys import new_key
from tests.servers.gateway import GatewayProcess, start_gateway, wait_for_state

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
# The servers tests start warm no local fabric unless a test asks (2 cores: one JVM at a time).
os.environ.setdefault("PROPHECY_JUPYTER_LOCAL_WARM_START", "never")
# Nor do they make a class archive in their fresh data dirs (tests/test_class_archive.py does).
os.environ.setdefault("PROPHECY_JUPYTER_LOCAL_CLASS_ARCHIVE", "never")


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """A fresh data dir and vault key for this test (nothing touches the user's own)."""
    directory = tmp_path / "prophecy-data"
    monkeypatch.setenv("PROPHECY_JUPYTER_DATA_DIR", str(directory))
    monkeypatch.setenv("PROPHECY_JUPYTER_KEY", new_key())
    return directory


@pytest.fixture(scope="session")
def gateway() -> GatewayProcess:
    """The session-wide gateway on a warm shared JVM (protected by a token)."""
    process = start_gateway("--idle-timeout", "0", token="test-gateway-token")
    yield process
    process.stop()


@pytest.fixture(scope="session")
def gateway_url(gateway) -> str:
    return gateway.url


@pytest.fixture
def livy(gateway) -> requests.Session:
    """An HTTP client for the gateway that sends its token."""
    http = requests.Session()
    http.headers.update(gateway.headers())
    yield http
    http.close()


@pytest.fixture
def new_session(gateway, livy):
    """Create idle pyspark sessions on the gateway; deleted after the test."""
    created: list[int] = []

    def create(**body) -> int:
        body.setdefault("kind", "pyspark")
        response = livy.post(f"{gateway.url}/sessions", json=body, timeout=10)
        assert response.status_code == 201, response.text
        session_id = response.json()["id"]
        created.append(session_id)
        wait_for_state(gateway.url, session_id, {"idle"}, headers=gateway.headers())
        return session_id

    yield create
    for session_id in created:
        livy.delete(f"{gateway.url}/sessions/{session_id}", timeout=60)


USER = local_username()


def livy_fabric(url: str, name: str = "gw", **extra) -> dict:
    """A fabric spec for a Livy endpoint that takes a bearer token."""
    return {"name": name, "kind": "livy", "settings": {"url": url, "auth": "bearer"}, **extra}


def open_services(
    directory, url: str, token: str, settings: ServiceSettings | None = None, **fabric
) -> Services:
    """Services over a fresh store with fabric ``default/gw`` pointing at ``url`` (token set for USER)."""
    built = build_services(directory, settings=settings, bootstrap_user=USER)
    created = built.fabrics.create(USER, "default", livy_fabric(url, **fabric))
    built.credentials.set(USER, created, token)
    return built


@pytest.fixture
def hermetic_databricks(monkeypatch, tmp_path):
    """No DATABRICKS_* from the machine, and no ~/.databrickscfg (for databricks-sdk)."""
    for name in [n for n in os.environ if n.startswith("DATABRICKS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(tmp_path / "missing.cfg"))


@pytest.fixture
def databricks_workspace(gateway, hermetic_databricks):
    """A stand-in Databricks workspace over the test gateway; stopped after the test."""
    from tests.servers.databricks import StandInWorkspace

    workspace = StandInWorkspace(gateway.url, gateway.token).start()
    yield workspace
    workspace.stop()


@pytest.fixture
def services(data_dir, gateway):
    built = open_services(data_dir, gateway.url, gateway.token)
    yield built
    built.close()
