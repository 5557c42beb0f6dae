"""GET never changes anything: reading a project's status does not clone it, its diff does not touch
the index, its history and pipelines do not clone. (A GET is not XSRF-checked, so a page on another
site could make a logged-in browser send one.)"""

from __future__ import annotations

import json
import subprocess

import pytest

from prophecy_jupyter.client.link import API_PREFIX
from prophecy_jupyter.environment import local_username
from tests.servers.git_http import GitHttpServer

pytest_plugins = ("pytest_jupyter.jupyter_server",)

USER = local_username()
TOKEN = "glpat-" + "r3ad" * 6


@pytest.fixture
def git_server(tmp_path):
    served = GitHttpServer(tmp_path / "served", {TOKEN: "oauth2"}).start()
    yield served
    served.stop()


@pytest.fixture
def api(jp_fetch):
    async def call(method: str, path: str, body=None):
        kwargs = {"method": method, "raise_error": False}
        if body is not None or method in ("POST", "PUT"):
            kwargs["body"] = json.dumps(body or {})
        response = await jp_fetch(API_PREFIX.lstrip("/"), path.lstrip("/"), **kwargs)
        return response.code, json.loads(response.body or b"null")

    return call


async def test_reading_a_project_changes_nothing(api, git_server, data_dir):
    url = git_server.create_repository("analytics")
    code, project = await api(
        "POST", "/teams/default/projects", {"name": "analytics", "url": url, "provider": "gitlab"}
    )
    assert code == 201, project
    assert (await api("PUT", f"/projects/{project['id']}/token", {"token": TOKEN}))[0] == 200
    working_copies = data_dir / "projects"

    code, status = await api("GET", f"/projects/{project['id']}/status")
    assert code == 200
    for path in ("diff", "history", "pipelines/orders"):
        await api("GET", f"/projects/{project['id']}/{path}")
    assert not git_server.requests, "a GET reached the Git server"
    assert not working_copies.exists() or not any(working_copies.rglob(".git"))
    assert status["cloned"] is False and status["branch"] is None
    for path in ("diff", "history", "pipelines/orders"):
        assert (await api("GET", f"/projects/{project['id']}/{path}"))[0] == 404

    code, pulled = await api("POST", f"/projects/{project['id']}/pull")
    assert code == 200, pulled
    (copy,) = [p.parent for p in working_copies.rglob(".git")]
    (copy / "new.py").write_text("print('not added')\n")
    before = subprocess.run(["git", "-C", str(copy), "status", "--porcelain"], capture_output=True, text=True)
    code, diff = await api("GET", f"/projects/{project['id']}/diff")
    assert code == 200 and "+print('not added')" in diff["diff"] and "b/new.py" in diff["diff"]
    after = subprocess.run(["git", "-C", str(copy), "status", "--porcelain"], capture_output=True, text=True)
    assert before.stdout == after.stdout == "?? new.py\n"
    code, status = await api("GET", f"/projects/{project['id']}/status")
    assert status["cloned"] is True and status["changes"] == [{"path": "new.py", "status": "untracked"}]
