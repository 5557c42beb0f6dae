"""Attacks on ``%%send`` by a member of the same hub: sending into another user's session, bodies
past the bound, names that would be code, and the uploaded bytes left where others could read
them."""

from __future__ import annotations

import json
import os
import stat
import uuid
from pathlib import Path

import pandas as pd
import pytest
import requests

from prophecy_jupyter.client.link import API_PREFIX
from prophecy_jupyter.results.model import RunState
from prophecy_jupyter.results.sending import ARROW_STREAM, arrow_table, encoded_parts
from tests.conftest import USER
from tests.test_server_api import OWNER, api, jp_server_config, seed  # noqa: F401 - fixtures

pytest_plugins = ("pytest_jupyter.jupyter_server",)
pytestmark = pytest.mark.spark

TABLE = next(encoded_parts(arrow_table(pd.DataFrame({"n": [1, 2, 3]}), "t")))


async def send(jp_fetch, user: str, session: str, body: bytes, **query: str) -> tuple[int, dict]:
    params = {"key": uuid.uuid4().hex, "part": "0", "name": "sent", "last": "true", **query}
    response = await jp_fetch(
        API_PREFIX.lstrip("/"),
        f"sessions/{session}/sends",
        method="POST",
        body=body,
        params=params,
        headers={"Authorization": f"token {user}-token", "Content-Type": ARROW_STREAM},
        raise_error=False,
    )
    return response.code, json.loads(response.body or b"{}")


async def test_a_table_goes_only_to_the_senders_own_session_and_within_bounds(api, jp_fetch, gateway):  # noqa: F811
    await seed(api)
    spec = {"name": "gw", "kind": "livy", "settings": {"url": gateway.url, "auth": "bearer"}}
    code, fabric = await api(OWNER, "POST", "/teams/alpha/fabrics", spec)
    for user in (OWNER, "alice"):
        await api(user, "PUT", f"/fabrics/{fabric['id']}/credential", {"secret": gateway.token})
    start = {"notebook": "shared.ipynb", "fabric": "alpha/gw", "wait": True}
    owners = (await api(OWNER, "POST", "/sessions", start))[1]
    alices = (await api("alice", "POST", "/sessions", start))[1]

    code, answer = await send(jp_fetch, "alice", owners["id"], TABLE)
    assert code == 404, "another user's session is not found"
    code, answer = await send(jp_fetch, "alice", alices["id"], b"x" * (33 * 1024 * 1024))
    assert code == 413 and "larger than" in answer["message"]
    for query, field in (
        ({"name": "__import__('os')"}, "name"),
        ({"key": "../x"}, "key"),
        ({"part": "-1"}, "part"),
    ):
        code, answer = await send(jp_fetch, "alice", alices["id"], TABLE, **query)
        assert code == 400 and answer["field"] == field, answer
    response = await jp_fetch(
        API_PREFIX.lstrip("/"),
        f"sessions/{alices['id']}/sends",
        method="POST",
        body=json.dumps({"code": "import os"}),
        params={"key": "0" * 32, "part": "0", "name": "sent"},
        headers={"Authorization": "token alice-token"},
        raise_error=False,
    )
    assert response.code == 400, "only Arrow is taken"

    code, run = await send(jp_fetch, "alice", alices["id"], TABLE)
    assert code == 202 and run["kind"] == "send"
    code, done = await api("alice", "GET", f"/runs/{run['id']}", params={"wait": "30"})
    assert done["state"] == "finished", done
    code, mine = await api("alice", "POST", f"/sessions/{alices['id']}/runs", {"code": "print(sent.count())"})
    code, counted = await api("alice", "GET", f"/runs/{mine['id']}", params={"wait": "30"})
    assert counted["result"]["text"].strip() == "3"
    code, theirs = await api(
        OWNER, "POST", f"/sessions/{owners['id']}/runs", {"code": "print('sent' in dir())"}
    )
    code, absent = await api(OWNER, "GET", f"/runs/{theirs['id']}", params={"wait": "30"})
    assert absent["result"]["text"].strip() == "False", "nothing reached the owner's session"


def uploads_folder(services, notebook: str) -> Path:
    run = services.sessions.run(
        USER, notebook, "gw", "import os\nprint(os.environ['PROPHECY_GATEWAY_UPLOADS'])"
    )
    return Path(run.result.text.strip())


def test_uploaded_bytes_are_private_and_gone_once_read_or_refused(services, gateway):
    folder = uploads_folder(services, "private.ipynb")
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(folder.parent.stat().st_mode) == 0o700
    for data, state in ((TABLE, RunState.FINISHED), (b"not arrow at all", RunState.FAILED)):
        run = services.sessions.submit_send(
            USER, "private.ipynb", "gw", data, "sent", key=uuid.uuid4().hex, part=0, last=True
        )
        assert run.wait(60) and run.state == state, run.result
        assert list(folder.iterdir()) == [], "the interpreter removed what it read, or failed to read"
    session = services.sessions.sessions_of(USER, "private.ipynb")[0].remote.id
    anonymous = requests.post(
        f"{gateway.url}/sessions/{session}/uploads",
        data=TABLE,
        headers={"Content-Type": ARROW_STREAM},
        timeout=10,
    )
    assert anonymous.status_code == 401, "the gateway takes uploads only with its token"
    services.sessions.close(USER, "private.ipynb")
    assert not folder.exists(), "a session's uploads leave with it"
    assert os.path.isdir(folder.parent)
