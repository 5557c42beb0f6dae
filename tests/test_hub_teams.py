"""Hub groups as teams, against a stand-in hub that answers JupyterHub's ``GET /hub/api/users/{name}``
(the user model with ``admin`` and ``groups``) only to the server's token."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from prophecy_jupyter.errors import AccessDenied, NotFound
from prophecy_jupyter.services.hub import HubGroups
from prophecy_jupyter.services.runtime import Services, build_services

HUB_TOKEN = "hub-api-token-4e1f"
USERS = {
    "carol": {"name": "carol", "admin": True, "groups": ["analysts"]},
    "alice": {"name": "alice", "admin": False, "groups": ["analysts", "not a valid team name!"]},
    "bob": {"name": "bob", "admin": False, "groups": []},
}


def groups() -> dict[str, dict]:
    """The hub's groups, as ``GET /hub/api/groups/{name}`` answers them."""
    names = {group for user in USERS.values() for group in user["groups"]}
    return {
        name: {"name": name, "users": sorted(u for u in USERS if name in USERS[u]["groups"])}
        for name in names
    }


class StandInHub(BaseHTTPRequestHandler):
    asked: list[str] = []

    def do_GET(self) -> None:
        users, groups_prefix = "/hub/api/users/", "/hub/api/groups/"
        if self.headers.get("Authorization") != f"token {HUB_TOKEN}":
            self._answer(403, {"status": 403, "message": "Forbidden"})
        elif self.path.startswith(groups_prefix) and self.path[len(groups_prefix) :] in groups():
            self._answer(200, groups()[self.path[len(groups_prefix) :]])
        elif not self.path.startswith(users) or self.path[len(users) :] not in USERS:
            self._answer(404, {"status": 404, "message": "Not Found"})
        else:
            self.asked.append(self.path[len(users) :])
            self._answer(200, USERS[self.path[len(users) :]])

    def _answer(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def hub_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), StandInHub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    StandInHub.asked.clear()
    yield f"http://127.0.0.1:{server.server_port}/hub/api"
    server.shutdown()
    server.server_close()


@pytest.fixture
def services(data_dir, hub_url) -> Iterator[Services]:
    built = build_services(data_dir, groups=HubGroups(hub_url, HUB_TOKEN), bootstrap_user="carol")
    yield built
    built.close()


def test_hub_groups_are_teams_and_hub_admins_administer_them(services):
    assert [t.to_json() for t in services.teams.teams_of("alice")] == [{"name": "analysts", "role": "member"}]
    assert {t.name: t.role for t in services.teams.teams_of("carol")} == {
        "analysts": "admin",
        "default": "admin",
    }
    spec = {"name": "warehouse", "kind": "livy", "settings": {"url": "https://livy.example.com"}}
    with pytest.raises(AccessDenied):
        services.fabrics.create("alice", "analysts", spec)
    fabric = services.fabrics.create("carol", "analysts", spec)
    assert services.fabrics.get("alice", "analysts/warehouse").id == fabric.id
    assert [f.ref for f in services.fabrics.list("bob")] == ["local"]
    with pytest.raises(NotFound):
        services.fabrics.get("bob", fabric.id)


def test_the_hub_is_asked_once_a_minute_and_a_refusal_means_no_groups(data_dir, hub_url, caplog):
    groups = HubGroups(hub_url, HUB_TOKEN)
    assert groups("alice") == groups("alice") == {"analysts": "member", "not a valid team name!": "member"}
    assert StandInHub.asked == ["alice"]
    assert HubGroups(hub_url, "wrong-token")("alice") == {}
    assert "answered 403" in caplog.text and "wrong-token" not in caplog.text
    assert HubGroups("http://127.0.0.1:9/hub/api", HUB_TOKEN, timeout=2)("alice") == {}
