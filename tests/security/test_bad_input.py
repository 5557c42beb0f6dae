"""Every bad input answers 4xx with a message naming the field, never a 500 and never a change that
sticks: deeply nested JSON, lone surrogates, non-ASCII tokens, names with a trailing newline, and
session settings of the wrong type."""

from __future__ import annotations

import json

import pytest

from prophecy_jupyter.client.link import API_PREFIX, KERNEL_HEADER
from prophecy_jupyter.errors import Invalid
from prophecy_jupyter.services.runtime import build_services
from prophecy_jupyter.services.teams import check_name

pytest_plugins = ("pytest_jupyter.jupyter_server",)


@pytest.fixture
def send(jp_fetch):
    async def call(method: str, path: str, raw: str | None = None, headers=None):
        response = await jp_fetch(
            API_PREFIX.lstrip("/"),
            path.lstrip("/"),
            method=method,
            body=raw,
            headers=headers,
            raise_error=False,
        )
        return response.code, json.loads(response.body or b"null")

    return call


LIVY = {"url": "https://livy.example.com", "auth": "bearer"}
BAD_BODIES = [
    ("POST", "/teams", "[" * 5000 + "]" * 5000, None),
    (
        "POST",
        "/teams",
        json.dumps(
            {"name": "x", "deep": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[0]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}
        ),
        "deep",
    ),
    ("POST", "/teams", '{"name": "\\ud800"}', "name"),
    ("POST", "/teams", '{"\\udc00": "ops"}', None),
    (
        "POST",
        "/teams/default/fabrics",
        json.dumps({"name": "etl", "kind": "livy", "settings": LIVY})[:-1] + ', "conf": {"k": "\\udfff"}}',
        "conf.k",
    ),
    ("PUT", "/attachments", '{"notebook": "a.ipynb", "fabric": "\\ud83d"}', "fabric"),
    ("POST", "/teams", '{"name": "ops\\n"}', "name"),
    (
        "POST",
        "/teams/default/fabrics",
        json.dumps({"name": "etl\n", "kind": "livy", "settings": LIVY}),
        "name",
    ),
    (
        "POST",
        "/teams/default/projects",
        json.dumps({"name": "etl\n", "url": "https://git.example.com/a.git"}),
        "name",
    ),
]


@pytest.mark.parametrize(
    "method,path,raw,field", BAD_BODIES, ids=[f"{m} {p} #{i}" for i, (m, p, _, _) in enumerate(BAD_BODIES)]
)
async def test_bad_bodies_are_400_naming_the_field(send, method, path, raw, field):
    code, body = await send(method, path, raw)
    assert code == 400, body
    if field is not None:
        assert body["field"] == field, body
    code, teams = await send("GET", "/teams")
    assert code == 200 and [t["name"] for t in teams["teams"]] == ["default"], "nothing was made"


async def test_a_kernel_token_that_is_not_ascii_is_refused_not_an_error(send):
    for token in ("ünïcödé-token", "\u00ff" * 40):
        code, body = await send("GET", "/me", headers={KERNEL_HEADER: token})
        assert code == 403, body


def test_names_are_anchored(data_dir):
    for name in ("ops\n", "ops\r\n", "\nops"):
        with pytest.raises(Invalid):
            check_name(name)


@pytest.mark.parametrize(
    "settings,field",
    [
        ({"conf": "spark.executor.memory=4g"}, "settings.conf"),
        ({"numExecutors": "lots"}, "settings.numExecutors"),
        ({"driverCores": 0}, "settings.driverCores"),
        ({"kind": "cobol"}, "settings.kind"),
        ({"jars": "one.jar"}, "settings.jars"),
        ({"conf": {"spark.x": {"nested": 1}}}, "settings.conf"),
        ({"proxyUser": "root"}, "settings.proxyUser"),
    ],
)
def test_bad_session_settings_are_refused_and_do_not_stick(data_dir, settings, field):
    services = build_services(data_dir, bootstrap_user="ana")
    try:
        sessions = services.sessions
        with pytest.raises(Invalid) as refused:
            sessions.configure("ana", "etl.ipynb", "local", settings)
        assert refused.value.field == field
        spec = sessions.spec_for("ana", "etl.ipynb", sessions.fabric("ana", "local"))
        assert spec.conf == {} and spec.resources == {} and spec.kind == "pyspark", "nothing stuck"
        assert (
            sessions.configure("ana", "etl.ipynb", "local", {"conf": {"spark.x": 1}, "numExecutors": 2})
            is False
        )
        spec = sessions.spec_for("ana", "etl.ipynb", sessions.fabric("ana", "local"))
        assert spec.conf == {"spark.x": "1"} and spec.resources == {"numExecutors": 2}
    finally:
        services.close()
