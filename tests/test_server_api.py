"""The REST API in a Jupyter server (pytest-jupyter): authentication, team isolation, admin rights,
write-only credentials, validation, and no secret anywhere it could leak."""

from __future__ import annotations

import asyncio
import json
import re

import pytest
from jupyter_server.auth.identity import IdentityProvider, User
from tornado.routing import PathMatches

from prophecy_jupyter.client.link import API_PREFIX, KERNEL_HEADER
from prophecy_jupyter.environment import local_username
from prophecy_jupyter.server.handlers import ROUTES

pytest_plugins = ("pytest_jupyter.jupyter_server",)

OWNER = local_username()
TOKENS = {f"{OWNER}-token": OWNER, "alice-token": "alice", "bob-token": "bob"}
SECRETS = ("owner-secret-5f1c", "alice-secret-9d2e", "bob-secret-77aa")


class TokenPerUser(IdentityProvider):
    """Each test token names a user (``Authorization: token alice-token`` is alice)."""

    def get_user(self, handler):
        scheme, _, token = handler.request.headers.get("Authorization", "").partition(" ")
        username = TOKENS.get(token) if scheme.lower() == "token" else None
        if username is None:
            return None
        handler._token_authenticated = True
        return User(username=username)

    def is_token_authenticated(self, handler) -> bool:
        return getattr(handler, "_token_authenticated", False)


@pytest.fixture
def jp_server_config(tmp_path, data_dir):
    return {
        "ServerApp": {
            "jpserver_extensions": {"prophecy_jupyter": True},
            "allow_unauthenticated_access": False,
            "identity_provider_class": TokenPerUser,
        },
        "ProphecyJupyter": {"identity": "jupyter", "data_dir": str(data_dir)},
    }


@pytest.fixture
def api(jp_fetch, jp_serverapp):
    """Call the API as a user; answers are decoded JSON and kept for the secret scan."""
    seen: list[str] = []

    async def call(user: str | None, method: str, path: str, body=None, params=None, headers=None):
        headers = dict(headers or {})
        if user is not None:
            headers["Authorization"] = f"token {user}-token"
        kwargs = {"method": method, "headers": headers, "params": params, "raise_error": False}
        if body is not None or method in ("POST", "PUT", "PATCH"):
            kwargs["body"] = json.dumps(body if body is not None else {})
        response = await jp_fetch(API_PREFIX.lstrip("/"), path.lstrip("/"), **kwargs)
        text = response.body.decode(errors="replace")
        seen.append(text)
        return response.code, (json.loads(text) if text and text.startswith(("{", "[")) else text)

    call.seen = seen
    return call


async def seed(api) -> dict:
    """Two teams: alpha (the owner admin, alice member) and beta (bob admin), a fabric in each."""
    assert (await api(OWNER, "POST", "/teams", {"name": "alpha"}))[0] == 201
    assert (await api(OWNER, "PUT", "/teams/alpha/members/alice", {"role": "member"}))[0] == 200
    assert (await api(OWNER, "POST", "/teams", {"name": "beta"}))[0] == 201
    assert (await api(OWNER, "PUT", "/teams/beta/members/bob", {"role": "admin"}))[0] == 200
    assert (await api(OWNER, "DELETE", "/teams/beta/members/" + OWNER))[0] == 204
    spec = {"kind": "livy", "settings": {"url": "http://127.0.0.1:9", "auth": "bearer"}}
    code, alpha = await api(OWNER, "POST", "/teams/alpha/fabrics", {"name": "shared", **spec})
    assert code == 201, alpha
    code, beta = await api("bob", "POST", "/teams/beta/fabrics", {"name": "secret-project", **spec})
    assert code == 201, beta
    return {"alpha": alpha, "beta": beta}


def concrete(pattern: str) -> str:
    values = iter(["alpha", "alice"])
    return re.sub(r"\(\[\^/\]\+\)", lambda _: next(values, "0" * 32), pattern).replace("\\", "")


ENDPOINTS = [
    (concrete(pattern), method) for pattern, handler in ROUTES for method in handler.allowed_methods()
]


@pytest.mark.parametrize("path,method", ENDPOINTS, ids=[f"{m} {p}" for p, m in ENDPOINTS])
async def test_every_endpoint_rejects_unauthenticated_requests(api, path, method):
    code, _ = await api(None, method, path)
    assert code == 403
    forged, _ = await api(None, method, path, headers={KERNEL_HEADER: "not-a-kernel-token"})
    assert forged == 403


async def test_the_api_is_routed_first_and_jupyter_keeps_its_own_routes(api, jp_fetch, jp_serverapp):
    rules = jp_serverapp.web_app.default_router.rules
    for _ in range(100):  # the extension moves its routes once the server's loop runs
        if isinstance(rules[0].matcher, PathMatches):
            break
        await asyncio.sleep(0.01)
    first, api_path = rules[0], jp_serverapp.base_url.rstrip("/") + API_PREFIX
    assert isinstance(first.matcher, PathMatches) and first.matcher.regex.match(api_path + "/me")
    assert not first.matcher.regex.match(jp_serverapp.base_url + "api/status")
    assert not first.matcher.regex.match(api_path + "x")
    assert (await api(OWNER, "GET", "/me"))[0] == 200
    assert (await api(OWNER, "GET", "/no-such-resource"))[0] == 404
    status = await jp_fetch("api", "status", headers={"Authorization": f"token {OWNER}-token"})
    assert status.code == 200 and "started" in json.loads(status.body)


async def test_teams_do_not_see_each_other(api):
    fabrics = await seed(api)
    beta_id = fabrics["beta"]["id"]
    repository = {"name": "secret-project", "url": "https://github.com/beta/secret-project.git"}
    code, beta_project = await api(
        "bob", "POST", "/teams/beta/projects", {**repository, "provider": "github"}
    )
    assert code == 201, beta_project
    jobs = f"/projects/{beta_project['id']}/jobs"
    job = {"name": "nightly", "pipelines": ["orders"], "fabric": beta_id}
    code, alice_fabrics = await api("alice", "GET", "/fabrics")
    assert [f["ref"] for f in alice_fabrics["fabrics"]] == ["local", "alpha/shared"]
    for method, path, body in [
        ("GET", f"/fabrics/{beta_id}", None),
        ("GET", "/fabrics/beta%2Fsecret-project", None),
        ("PUT", f"/fabrics/{beta_id}/credential", {"secret": "x"}),
        ("POST", f"/fabrics/{beta_id}/test", None),
        ("GET", "/teams/beta/members", None),
        ("POST", "/sessions", {"notebook": "n.ipynb", "fabric": beta_id}),
        ("PUT", "/attachments", {"notebook": "n.ipynb", "fabric": "beta/secret-project"}),
        ("GET", jobs, None),
        ("POST", jobs, job),
        ("GET", f"{jobs}/nightly", None),
        ("DELETE", f"{jobs}/nightly", None),
        ("POST", f"{jobs}/nightly/export", {}),
        ("POST", f"{jobs}/nightly/deploy", None),
        ("POST", f"{jobs}/nightly/run", None),
        ("GET", f"{jobs}/nightly/runs", None),
        ("POST", f"{jobs}/nightly/cancel", {}),
        ("POST", f"{jobs}/nightly/pause", None),
        ("POST", f"{jobs}/nightly/resume", None),
        ("GET", "/projects/beta%2Fsecret-project/jobs", None),
    ]:
        code, body_out = await api("alice", method, path, body)
        assert code == 404, (method, path, body_out)
        said = body_out["message"]  # only what alice asked for is named back
        assert "secret-project" not in json.dumps(body_out) or said.startswith(("No fabric", "No project"))
    code, teams = await api("alice", "GET", "/teams")
    assert teams == {"teams": [{"name": "alpha", "role": "member"}]}


async def test_only_team_admins_change_fabrics_and_members(api):
    fabrics = await seed(api)
    alpha_id = fabrics["alpha"]["id"]
    for method, path, body in [
        ("PATCH", f"/fabrics/{alpha_id}", {"environment": "prod"}),
        ("DELETE", f"/fabrics/{alpha_id}", None),
        ("POST", "/teams/alpha/fabrics", {"name": "mine", "kind": "livy", "settings": {"url": "http://x"}}),
        ("PUT", "/teams/alpha/members/bob", {"role": "member"}),
        ("DELETE", "/teams/alpha/members/alice", None),
        ("DELETE", "/teams/alpha", None),
    ]:
        code, body_out = await api("alice", method, path, body)
        assert code == 403 and "Only admins of team 'alpha'" in body_out["message"], (method, path, body_out)
    code, changed = await api(OWNER, "PATCH", f"/fabrics/{alpha_id}", {"environment": "prod"})
    assert code == 200 and changed["environment"] == "prod"
    code, members = await api("alice", "GET", "/teams/alpha/members")
    assert code == 200 and {"username": "alice", "role": "member"} in members["members"]


async def test_fabric_settings_are_validated_naming_the_field(api):
    await seed(api)
    cases = [
        ({"name": "x", "kind": "livy", "settings": {"url": "ftp://x"}}, "settings.url"),
        ({"name": "x", "kind": "livy", "settings": {"url": "http://x", "port": 1}}, "settings.port"),
        ({"name": "x", "kind": "databricks", "settings": {"host": "https://h"}}, "settings.cluster_id"),
        ({"name": "x", "kind": "snowflake", "settings": {"account": "a b", "user": "u"}}, "settings.account"),
        ({"name": "x", "kind": "teradata"}, "kind"),
        ({"name": "x", "kind": "livy", "settings": {"url": "http://x"}, "colour": "red"}, "colour"),
        (
            {"name": "x", "kind": "livy", "settings": {"url": "http://x"}, "job_sizes": {"M": {"gpus": 1}}},
            "job_sizes",
        ),
        ({"name": "no/slash", "kind": "livy", "settings": {"url": "http://x"}}, "name"),
    ]
    for body, field in cases:
        code, answer = await api(OWNER, "POST", "/teams/alpha/fabrics", body)
        assert code == 400 and answer["field"] == field and field.split(".")[-1] in answer["message"], answer
    code, answer = await api(
        OWNER, "POST", "/teams/alpha/fabrics", None, headers={"Content-Type": "text/plain"}
    )
    assert code == 400


async def test_credentials_are_write_only_and_each_users_own(api, jp_logging_stream, data_dir):
    fabrics = await seed(api)
    alpha_id = fabrics["alpha"]["id"]
    owner_secret, alice_secret, _ = SECRETS
    code, stored = await api(OWNER, "PUT", f"/fabrics/{alpha_id}/credential", {"secret": owner_secret})
    assert code == 200 and stored["set"] is True and owner_secret not in json.dumps(stored)
    code, status = await api("alice", "GET", f"/fabrics/{alpha_id}/credential")
    assert code == 200 and status == {
        "needed": "token",
        "set": False,
        "updated_at": None,
        "endpoint_changed": False,
        "given_for": None,
    }
    await api("alice", "PUT", f"/fabrics/{alpha_id}/credential", {"secret": alice_secret})
    code, listing = await api("alice", "GET", "/fabrics")
    assert listing["fabrics"][1]["credential"]["set"] is True
    code, report = await api("alice", "POST", f"/fabrics/{alpha_id}/test")
    assert code == 200 and report["ok"] is False and report["stage"] == "tcp"
    await api(
        OWNER,
        "PATCH",
        f"/fabrics/{alpha_id}",
        {"settings": {"url": "http://127.0.0.1:9", "auth": "bearer", "headers": {"X-Team": "alpha"}}},
    )
    assert (await api(OWNER, "GET", f"/fabrics/{alpha_id}/credential"))[1]["set"] is True
    code, _ = await api("alice", "DELETE", f"/fabrics/{alpha_id}/credential")
    assert code == 204 and (await api("alice", "GET", f"/fabrics/{alpha_id}/credential"))[1]["set"] is False
    # no stored secret in any answer, log line or file under the data dir
    for text in api.seen:
        assert owner_secret not in text and alice_secret not in text
    log = jp_logging_stream.getvalue()
    assert owner_secret not in log and alice_secret not in log
    for path in data_dir.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            assert owner_secret.encode() not in content and alice_secret.encode() not in content, path


async def test_deleting_a_fabric_deletes_everyones_credentials(api):
    fabrics = await seed(api)
    alpha_id = fabrics["alpha"]["id"]
    await api("alice", "PUT", f"/fabrics/{alpha_id}/credential", {"secret": "temporary"})
    assert (await api(OWNER, "DELETE", f"/fabrics/{alpha_id}"))[0] == 204
    _code, _ = await api(
        OWNER,
        "POST",
        "/teams/alpha/fabrics",
        {"name": "shared", "kind": "livy", "settings": {"url": "https://x", "auth": "bearer"}},
    )
    fabrics = (await api("alice", "GET", "/fabrics"))[1]["fabrics"]
    fresh = next(f for f in fabrics if f["ref"] == "alpha/shared")
    assert fresh["credential"]["set"] is False


async def test_attachments_and_request_limits(api):
    await seed(api)
    code, attached = await api(
        "alice", "PUT", "/attachments", {"notebook": "work/etl.ipynb", "fabric": "shared"}
    )
    assert code == 200 and attached == {"notebook": "work/etl.ipynb", "fabric": "alpha/shared"}
    assert (await api("alice", "GET", "/attachments", params={"notebook": "work/etl.ipynb"}))[1][
        "fabric"
    ] == "alpha/shared"
    assert (await api("bob", "GET", "/attachments", params={"notebook": "work/etl.ipynb"}))[1][
        "fabric"
    ] is None
    assert (await api("alice", "DELETE", "/attachments", params={"notebook": "work/etl.ipynb"}))[0] == 204
    assert (await api("alice", "GET", "/attachments", params={"notebook": "work/etl.ipynb"}))[1][
        "fabric"
    ] is None
    for bad in ("etl\x00.ipynb", "\udb4d.ipynb"):
        code, answer = await api("alice", "PUT", "/attachments", {"notebook": bad, "fabric": "shared"})
        assert code == 400 and answer["field"] == "notebook", answer
        code, answer = await api("alice", "POST", "/projects/any/pipelines", {"notebook": bad})
        assert code == 400 and answer["field"] == "notebook", answer
    big = {"code": "x" * (9 * 1024 * 1024)}
    code, answer = await api(OWNER, "POST", "/sessions/" + "0" * 32 + "/runs", big)
    assert code == 413 and "larger than" in answer["message"]
    assert (await api(OWNER, "GET", "/runs/" + "0" * 32))[0] == 404
    code, answer = await api(OWNER, "GET", "/runs/" + "0" * 32, params={"wait": "soon"})
    assert code in (400, 404)


@pytest.mark.spark
async def test_each_user_runs_with_their_own_credential(api, gateway):
    """One fabric of team alpha on a gateway that wants a token: each member's own token is used."""
    await seed(api)
    spec = {"name": "gw", "kind": "livy", "settings": {"url": gateway.url, "auth": "bearer"}}
    code, fabric = await api(OWNER, "POST", "/teams/alpha/fabrics", spec)
    assert code == 201, fabric
    await api(OWNER, "PUT", f"/fabrics/{fabric['id']}/credential", {"secret": gateway.token})
    await api("alice", "PUT", f"/fabrics/{fabric['id']}/credential", {"secret": "alice-wrong-token"})
    start = {"notebook": "shared.ipynb", "fabric": "alpha/gw", "wait": True}
    code, refused = await api("alice", "POST", "/sessions", start)
    assert code == 502 and "alpha/gw" in refused["message"] and "alice-wrong-token" not in json.dumps(refused)
    code, owners = await api(OWNER, "POST", "/sessions", start)
    assert code == 200 and owners["state"] == "idle", owners
    await api("alice", "PUT", f"/fabrics/{fabric['id']}/credential", {"secret": gateway.token})
    code, alices = await api("alice", "POST", "/sessions", start)
    assert code == 200 and alices["remote_id"] != owners["remote_id"], "each user has a session of their own"
    assert (await api("alice", "GET", f"/sessions/{owners['id']}"))[0] == 404
    for user, session in ((OWNER, owners), ("alice", alices)):
        assert (await api(user, "DELETE", f"/sessions/{session['id']}"))[0] == 204
