"""Credentials follow the endpoint they were given for, and go with their fabric, project and team:
an admin who points a fabric elsewhere gets nobody's token; a new fabric or project never inherits
the credentials of a deleted one."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from prophecy_jupyter.errors import Conflict, EndpointChanged, NotFound
from prophecy_jupyter.services.connection_test import check_fabric
from prophecy_jupyter.services.runtime import build_services
from prophecy_jupyter.store.models import Credential

OWNER, ALICE = "olga", "alice"
ALICE_TOKEN = "alice-livy-token-3b9c"


class Listening(BaseHTTPRequestHandler):
    """An admin's own server: records every Authorization header it is sent."""

    seen: list[str] = []

    def do_GET(self) -> None:
        self.seen.append(self.headers.get("Authorization", ""))
        body = b'{"version": "0.8.0", "sessions": [], "total": 0, "from": 0}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def listener():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Listening)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Listening.seen.clear()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def services(data_dir):
    built = build_services(data_dir, bootstrap_user=OWNER)
    built.teams.set_member(OWNER, "default", ALICE, "member")
    yield built
    built.close()


def test_a_fabric_pointed_elsewhere_gets_nobodys_credential(services, listener):
    spec = {"name": "etl", "kind": "livy", "settings": {"url": "http://127.0.0.1:9", "auth": "bearer"}}
    fabric = services.fabrics.create(OWNER, "default", spec)
    services.credentials.set(ALICE, fabric, ALICE_TOKEN)
    moved = services.fabrics.update(OWNER, fabric.id, {"settings": {"url": listener, "auth": "bearer"}})

    report = check_fabric(services.fabrics, ALICE, fabric.id)
    assert not report.ok and report.stage == "credentials" and "confirm" in report.message
    with pytest.raises(EndpointChanged, match=r"http://127\.0\.0\.1:9"):
        services.sessions.session(ALICE, "etl.ipynb", fabric.id)
    assert not any(ALICE_TOKEN in header for header in Listening.seen), "the token went to the new address"
    status = services.credentials.status(ALICE, moved)
    assert status.set and status.given_for == "http://127.0.0.1:9" and status.to_json()["endpoint_changed"]

    services.credentials.confirm(ALICE, moved)  # alice agrees: now it goes there
    assert check_fabric(services.fabrics, ALICE, fabric.id).ok
    assert any(ALICE_TOKEN in header for header in Listening.seen)
    assert services.credentials.status(ALICE, moved).given_for is None


def test_a_new_fabric_or_project_never_inherits_a_deleted_ones_credentials(services):
    services.teams.create(OWNER, "etl")
    services.teams.set_member(OWNER, "etl", ALICE, "member")
    spec = {"name": "analytics", "url": "https://git.example.com/etl/analytics.git", "provider": "github"}
    project = services.projects.create(OWNER, "etl", spec)
    services.projects.set_token(ALICE, project.id, "ghp_alice_" + "x" * 20)
    fabric = services.fabrics.create(
        OWNER,
        "etl",
        {"name": "etl", "kind": "livy", "settings": {"url": "https://livy.example.com", "auth": "bearer"}},
    )
    services.credentials.set(ALICE, fabric, ALICE_TOKEN)

    services.fabrics.delete(OWNER, fabric.id)
    try:
        services.teams.delete(OWNER, "etl")
    except Conflict:  # a team goes only once its projects have gone (with their tokens)
        services.projects.delete(OWNER, project.id)
        services.teams.delete(OWNER, "etl")

    services.teams.create(OWNER, "ops")
    services.teams.set_member(OWNER, "ops", ALICE, "member")
    again = services.projects.create(
        OWNER, "ops", {**spec, "url": "https://git.example.com/ops/analytics.git"}
    )
    refabric = services.fabrics.create(
        OWNER,
        "ops",
        {"name": "etl", "kind": "livy", "settings": {"url": "https://livy.example.com", "auth": "bearer"}},
    )
    assert again.id != project.id and refabric.id != fabric.id
    assert not services.credentials.status(ALICE, again).set
    assert not services.credentials.status(ALICE, refabric).set
    with services.db.transaction() as session:
        assert session.query(Credential).count() == 0


def test_a_connection_test_reaches_only_fabrics_of_your_teams(services, listener):
    """A connection test makes the server open connections: only to the fabrics of one's teams."""
    services.teams.create(OWNER, "etl")
    fabric = services.fabrics.create(
        OWNER, "etl", {"name": "probe", "kind": "livy", "settings": {"url": listener, "auth": "none"}}
    )
    with pytest.raises(NotFound):
        check_fabric(services.fabrics, ALICE, fabric.id)
    with pytest.raises(NotFound):
        check_fabric(services.fabrics, ALICE, "etl/probe")
    assert Listening.seen == [], "nothing was sent for her"
    assert check_fabric(services.fabrics, OWNER, fabric.id).ok
