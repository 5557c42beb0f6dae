"""Two users of a real JupyterHub, in different hub groups, with their servers spawned as their own
system users and our hub service holding the store (a real PostgreSQL, password-protected) and the
vault key: each sees only their teams' fabrics, uses only their own credential (Livy sessions run
as them), cannot reach the other's server, sessions or cache, and neither their servers nor their
kernels can read the master key, the database's password or the other's secret."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
import schemathesis
import yaml
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

import prophecy_jupyter.hub
from prophecy_jupyter.client.link import API_PREFIX
from prophecy_jupyter.hub.handlers import ROUTES as HUB_ROUTES
from prophecy_jupyter.paths import write_private
from prophecy_jupyter.vault.keys import new_key
from tests.servers.git_http import GitHttpServer
from tests.servers.jupyterhub import start_hub, users_python
from tests.servers.postgres import running_postgres

pytestmark = [pytest.mark.spark, pytest.mark.slow]

ALICE, BOB, OLGA = "prophecy-alice", "prophecy-bob", "prophecy-olga"
#: Before any secret of the test exists: only files written since can hold one, so the scans read
#: only those (all of /tmp, read whole, took over 300 s on a machine with large trees there).
SECRETS_MADE = time.time() - 1
ALICE_ONLY = "alice-only-secret-" + secrets.token_hex(6)
GIT_TOKEN = "git-token-" + secrets.token_hex(8)
SCAN = """
import json, os, sys
markers = json.loads(sys.stdin.read())
found = []
since = float(sys.argv[1])
def check(path):
    try:
        with open(path, "rb") as handle:
            data = handle.read(50_000_000)
    except OSError:
        return
    found.extend([path, name] for name, marker in markers.items() if marker.encode() in data)
for root in sys.argv[2:]:
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            try:
                if os.lstat(path).st_mtime < since:
                    continue
            except OSError:
                continue
            check(path)
for pid in filter(str.isdigit, os.listdir("/proc")):
    for what in ("environ", "cmdline"):
        check(f"/proc/{pid}/{what}")
print(json.dumps(found))
"""


@pytest.fixture(scope="module")
def deployment(gateway):
    if os.geteuid() != 0:
        pytest.fail("the hub test spawns servers as other system users: run it as root (CI does)")
    password = secrets.token_hex(12)
    service_dir = Path(tempfile.mkdtemp(prefix="prophecy-hub-service-"))
    key = new_key()
    write_private(service_dir / "vault.key", key.encode())
    with running_postgres(password) as database_url:
        hub = start_hub(
            groups={"analysts": [ALICE, OLGA], "engineers": [BOB, OLGA], "everyone": [ALICE, BOB, OLGA]},
            admins={OLGA},
            service_env={
                "PROPHECY_JUPYTER_DATABASE_URL": database_url,
                "PROPHECY_JUPYTER_DATA_DIR": str(service_dir),
            },
            spawned=[ALICE, BOB],
        )
        try:
            yield {"hub": hub, "password": password, "key": key, "service_dir": service_dir}
        finally:
            hub.stop()
            shutil.rmtree(service_dir, ignore_errors=True)


def api(hub, user: str, token: str, method: str, path: str, body=None) -> requests.Response:
    return hub.server(user, token, method, API_PREFIX + path, json=body)


def scan_as(user: str, markers: dict[str, str], roots: list[str]) -> list:
    done = subprocess.run(
        ["runuser", "-u", user, "--", str(users_python()), "-c", SCAN, str(SECRETS_MADE), *roots],
        input=json.dumps(markers),
        capture_output=True,
        text=True,
        timeout=300,
        cwd="/",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_two_hub_users_share_fabrics_without_reaching_each_others_credentials_code_or_sessions(
    deployment, gateway, livy
):
    hub = deployment["hub"]
    olga = hub.token_of(OLGA)  # a hub admin: admin of the teams of her groups
    service = requests.Session()
    service.headers["Authorization"] = f"token {olga}"
    livy_spec = {"kind": "livy", "settings": {"url": gateway.url, "auth": "bearer"}}
    fabrics = {}
    for team, name in (
        ("analysts", "etl"),
        ("engineers", "ml"),
        ("everyone", "shared"),
        ("everyone", "vaulted"),
    ):
        created = service.post(
            f"{hub.service_url}api/v1/teams/{team}/fabrics", json={"name": name, **livy_spec}
        )
        assert created.status_code == 201, created.text
        fabrics[f"{team}/{name}"] = created.json()

    for user in (ALICE, BOB):
        hub.start_server(user)
    alice, bob = hub.token_of(ALICE), hub.token_of(BOB)
    seen = {
        user: [f["ref"] for f in api(hub, user, token, "GET", "/fabrics").json()["fabrics"]]
        for user, token in ((ALICE, alice), (BOB, bob))
    }
    assert seen == {
        ALICE: ["local", "analysts/etl", "everyone/shared", "everyone/vaulted"],
        BOB: ["local", "engineers/ml", "everyone/shared", "everyone/vaulted"],
    }
    assert api(hub, BOB, bob, "GET", "/fabrics/" + quote("analysts/etl", safe="")).status_code == 404

    # alice brings her own credentials; her cells run on Livy as her
    for ref, secret in (("everyone/shared", gateway.token), ("everyone/vaulted", ALICE_ONLY)):
        stored = api(
            hub, ALICE, alice, "PUT", f"/fabrics/{fabrics[ref]['id']}/credential", {"secret": secret}
        )
        assert stored.status_code == 200 and stored.json()["set"] is True, stored.text
    session = api(
        hub,
        ALICE,
        alice,
        "POST",
        "/sessions",
        {"notebook": "a.ipynb", "fabric": "everyone/shared", "wait": True},
    )
    assert session.status_code == 200, session.text
    session = session.json()
    run = api(hub, ALICE, alice, "POST", f"/sessions/{session['id']}/runs", {"code": "print(6 * 7)"}).json()
    done = api(hub, ALICE, alice, "GET", f"/runs/{run['id']}?wait=30").json()
    assert done["result"] == {"kind": "text", "text": "42"}, done
    remote = livy.get(f"{gateway.url}/sessions/{session['remote_id']}", timeout=10).json()
    assert remote["proxyUser"] == ALICE

    # bob uses his own credential, which he has not set: never alice's
    refused = api(
        hub, BOB, bob, "POST", "/sessions", {"notebook": "b.ipynb", "fabric": "everyone/shared", "wait": True}
    )
    assert refused.status_code >= 400 and "needs your token" in refused.json()["message"], refused.text
    direct = requests.get(
        f"{hub.service_url}api/v1/fabrics/{fabrics['everyone/vaulted']['id']}/credential/secret",
        headers={"Authorization": f"token {bob}"},
        timeout=30,
    )
    assert direct.status_code == 200 and direct.json() == {"secret": None}, "bob gets only his own"
    foreign = requests.get(
        f"{hub.service_url}api/v1/fabrics/{fabrics['analysts/etl']['id']}/credential/secret",
        headers={"Authorization": f"token {bob}"},
        timeout=30,
    )
    assert foreign.status_code == 404
    # bob's token opens neither alice's server (sessions, files, cache) nor the hub service as her
    for path in (API_PREFIX + "/sessions", API_PREFIX + "/fabrics", "/api/contents"):
        assert hub.server(ALICE, bob, "GET", path, allow_redirects=False).status_code in (302, 403, 404)
    assert api(hub, BOB, bob, "GET", "/sessions").json()["sessions"] == []

    # teams: hub groups are teams, a group's name cannot be taken, a team of one's own can
    me = api(hub, ALICE, alice, "GET", "/me").json()
    assert me["user"] == ALICE and {t["name"]: t["role"] for t in me["teams"]} == {
        "analysts": "member",
        "everyone": "member",
    }
    assert api(hub, ALICE, alice, "POST", "/teams", {"name": "engineers"}).status_code == 409
    assert api(hub, ALICE, alice, "POST", "/teams", {"name": "alice-lab"}).status_code == 201
    assert (
        api(hub, ALICE, alice, "PUT", f"/teams/alice-lab/members/{BOB}", {"role": "member"}).status_code
        == 200
    )
    members = api(hub, BOB, bob, "GET", "/teams/alice-lab/members").json()["members"]
    assert members == [{"username": ALICE, "role": "admin"}, {"username": BOB, "role": "member"}]

    # projects: each member clones with their own token, held by the hub service
    git = GitHttpServer(
        deployment["service_dir"].parent / f"git-{secrets.token_hex(4)}", {GIT_TOKEN: "alice-git"}
    )
    git.start()
    try:
        spec = {"name": "etl", "url": git.create_repository("etl"), "provider": "generic"}
        project = service.post(f"{hub.service_url}api/v1/teams/everyone/projects", json=spec)
        assert project.status_code == 201, project.text
        project = project.json()
        path = f"/projects/{project['id']}"
        assert [p["ref"] for p in api(hub, BOB, bob, "GET", "/projects").json()["projects"]] == [
            "everyone/etl"
        ]
        token = {"token": GIT_TOKEN, "username": "alice-git"}
        assert api(hub, ALICE, alice, "PUT", path + "/token", token).json()["set"] is True
        assert api(hub, ALICE, alice, "GET", path + "/status").json()["cloned"] is False
        assert api(hub, ALICE, alice, "POST", path + "/pull").status_code == 200
        assert api(hub, ALICE, alice, "GET", path + "/status").json()["cloned"] is True
        assert api(hub, BOB, bob, "GET", path + "/token").json()["set"] is False
        refused = api(hub, BOB, bob, "POST", path + "/pull")
        assert refused.status_code == 400 and "Set your token" in refused.json()["message"]
    finally:
        git.stop()
    cache = hub.base / "home" / ALICE / ".local/share/jupyter/prophecy/cache"
    assert any(cache.rglob("*.sealed")), "alice's snapshot is in her own server's cache"

    # kernels in both servers, then what each user's processes and readable files hold
    for user, token in ((ALICE, alice), (BOB, bob)):
        body = {"path": "k.ipynb", "type": "notebook", "name": "k.ipynb", "kernel": {"name": "python3"}}
        started = hub.server(user, token, "POST", "/api/sessions", json=body)
        assert started.status_code == 201, started.text
    time.sleep(3)
    markers = {
        "the vault key": deployment["key"],
        "the database password": deployment["password"],
        "alice's git token": GIT_TOKEN,
    }
    roots = [str(hub.base), str(deployment["service_dir"]), "/tmp"]
    assert scan_as("root", markers, roots), "the scan finds the key where it can read it"
    assert scan_as(ALICE, {k: v for k, v in markers.items() if "alice" not in k}, roots) == []
    assert scan_as(BOB, {**markers, "alice's secret": ALICE_ONLY}, roots) == []
    for user in (ALICE, BOB):
        home = hub.base / "home" / user
        assert not list(home.rglob("vault.key")), "a user's server holds no vault key"
        assert (home / ".local/share/jupyter/prophecy").is_dir(), "(their server did run the extension)"
    # and the database refuses whoever does not have its password, whatever they know of it
    probe = "import psycopg, sys; psycopg.connect(sys.argv[1], connect_timeout=5)"
    url = json.loads((hub.base / "hub" / "settings.json").read_text())["service_env"][
        "PROPHECY_JUPYTER_DATABASE_URL"
    ]
    without_password = url.replace(f":{deployment['password']}@", "@").replace(
        "postgresql+psycopg", "postgresql"
    )
    attempt = subprocess.run(
        ["runuser", "-u", BOB, "--", str(users_python()), "-c", probe, without_password],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert attempt.returncode != 0 and "password" in attempt.stderr


HUB_SPEC = Path(prophecy_jupyter.hub.__file__).with_name("openapi.yaml")
hub_schema = schemathesis.openapi.from_path(HUB_SPEC)


def test_every_hub_service_route_is_described():
    described = {
        (re.sub(r"\{[^}]+\}", "{}", path), method)
        for path, item in yaml.safe_load(HUB_SPEC.read_text())["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    }
    served = {
        ("/" + re.sub(r"\([^)]*\)", "{}", pattern), method)
        for pattern, handler in HUB_ROUTES
        for method in ("get", "post", "put", "patch", "delete")
        if method in vars(handler)
    }
    assert served == described


@hub_schema.parametrize()
@settings(max_examples=10, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_the_hub_service_keeps_to_its_description(case, deployment):
    """The hub service fuzzed from its description, as a hub admin: no 500, answers as described."""
    hub = deployment["hub"]
    token = deployment.setdefault("olga", hub.token_of(OLGA))
    case.call_and_validate(
        base_url=hub.service_url + "api/v1",
        headers={"Authorization": f"token {token}"},
        excluded_checks=[positive_data_acceptance],
        timeout=60,
    )
