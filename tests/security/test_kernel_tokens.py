"""Kernel tokens: a kernel's token is its own, acts as the user who started the kernel, ends with the
kernel, never reaches the kernel's environment, its children or the server's, and passes through the
deployment's authorizer like the browser does. Against a real Jupyter server with two users."""

from __future__ import annotations

import json
import os

import psutil
import pytest
import requests

from prophecy_jupyter.client.link import API_PREFIX, KERNEL_HEADER
from tests.servers.identities import DENY_ENV, TOKEN_OF
from tests.servers.jupyter import start_jupyter, write_notebook
from tests.servers.kernels import execute

pytestmark = pytest.mark.slow

MULTI_USER = (
    "--ServerApp.identity_provider_class=tests.servers.identities.TokenPerUser",
    "--ServerApp.authorizer_class=tests.servers.identities.DenyList",
    "--ProphecyJupyter.identity=jupyter",
)
# What a cell finds out about its kernel's token: the token it uses, and everywhere it must not be.
INSPECT = """
import json, os, subprocess, sys
from prophecy_jupyter.client import connect
token = connect()._http.headers["X-Prophecy-Kernel"]
children = subprocess.run(["env"], capture_output=True, text=True).stdout
python = subprocess.run(
    [sys.executable, "-c", "import os; print(dict(os.environ))"], capture_output=True, text=True
).stdout
with open(f"/proc/{os.getpid()}/environ", "rb") as handle:
    initial = handle.read().decode(errors="replace")
print(json.dumps({
    "token": token,
    "in_os_environ": token in json.dumps(dict(os.environ)),
    "in_env_command": token in children,
    "in_child_python": token in python,
    "in_proc_environ": token in initial,
    "variables": sorted(k for k in os.environ if k.startswith("PROPHECY_JUPYTER_KERNEL")),
}))
"""


@pytest.fixture
def server(tmp_path, data_dir):
    started = start_jupyter(
        tmp_path,
        data_dir,
        os.environ["PROPHECY_JUPYTER_KEY"],
        *MULTI_USER,
        env={
            DENY_ENV: json.dumps(
                [["bob", "execute", "prophecy:sessions"], ["bob", "write", "prophecy:projects"]]
            )
        },
    )
    yield started
    started.stop()


def kernel_of(server, user: str, notebook: str):
    write_notebook(server.root / notebook)
    kernel = server.start_kernel(notebook, token=TOKEN_OF[user])
    client = server.client(kernel)
    return kernel, client


def inspect(client) -> dict:
    cell = execute(client, INSPECT)
    assert cell.ok, cell.failure
    return json.loads(cell.stdout.strip().splitlines()[-1])


def as_kernel(server, token: str, method: str, path: str, body=None) -> requests.Response:
    return requests.request(
        method, f"{server.url}{API_PREFIX}{path}", json=body, headers={KERNEL_HEADER: token}, timeout=60
    )


def test_the_token_is_not_in_the_kernels_environment_its_children_or_the_servers(server):
    _, client = kernel_of(server, "alice", "a.ipynb")
    try:
        seen = inspect(client)
        assert seen["token"]
        assert not any(
            seen[k] for k in ("in_os_environ", "in_env_command", "in_child_python", "in_proc_environ")
        )
        assert seen["variables"] == []
        # The server's own environment: a terminal's shell inherits it as it is.
        server.call("POST", "/terminals", api="/api")
        children = psutil.Process(server.process.pid).children(recursive=True)
        assert len(children) >= 2
        for child in children:
            try:
                environment, command = child.environ(), " ".join(child.cmdline())
            except (psutil.NoSuchProcess, psutil.ZombieProcess):
                continue  # a short-lived child that has ended
            assert seen["token"] not in json.dumps(environment), command
            if "ipykernel" not in command:
                assert not [k for k in environment if k.startswith("PROPHECY_JUPYTER_KERNEL")], command
    finally:
        client.stop_channels()


def test_a_kernel_acts_as_the_user_who_started_it_and_only_while_it_runs(server):
    alice_kernel, alice = kernel_of(server, "alice", "a.ipynb")
    bob_kernel, bob = kernel_of(server, "bob", "b.ipynb")
    try:
        alice_token, bob_token = inspect(alice)["token"], inspect(bob)["token"]
        assert alice_token != bob_token
        assert as_kernel(server, alice_token, "GET", "/me").json()["user"] == "alice"
        assert as_kernel(server, bob_token, "GET", "/me").json()["user"] == "bob"
        attached = as_kernel(
            server, alice_token, "PUT", "/attachments", {"notebook": "a.ipynb", "fabric": "local"}
        )
        assert attached.status_code == 200, attached.text
        seen_by_bob = as_kernel(server, bob_token, "GET", "/attachments?notebook=a.ipynb").json()
        assert seen_by_bob["fabric"] is None
        cell = execute(bob, "%load_ext prophecy_jupyter\n%fabric status")
        assert cell.ok, cell.failure
    finally:
        alice.stop_channels()
        bob.stop_channels()
    server.call("DELETE", f"/kernels/{alice_kernel}", api="/api", token=TOKEN_OF["alice"])
    refused = as_kernel(server, alice_token, "GET", "/me")
    assert refused.status_code == 403 and "kernel" in refused.json()["message"]
    assert as_kernel(server, "made-up-token", "GET", "/me").status_code == 403
    assert as_kernel(server, bob_token, "GET", "/me").status_code == 200
    server.call("DELETE", f"/kernels/{bob_kernel}", api="/api", token=TOKEN_OF["bob"])


def test_the_deployments_authorizer_decides_for_browsers_and_kernels_alike(server):
    session = {"notebook": "b.ipynb", "fabric": "missing", "wait": False}
    browser = server.request("POST", "/sessions", session, token=TOKEN_OF["bob"])
    assert browser.status_code == 403 and "not authorized" in browser.json()["message"], browser.text
    commit = server.request("POST", "/projects/anything/commit", {"message": "x"}, token=TOKEN_OF["bob"])
    assert commit.status_code == 403, commit.text
    assert server.request("GET", "/me", token=TOKEN_OF["bob"]).status_code == 200
    # alice may: she gets past the authorizer to the fabric lookup
    assert server.request("POST", "/sessions", session, token=TOKEN_OF["alice"]).status_code == 404
    _, bob = kernel_of(server, "bob", "b.ipynb")
    try:
        token = inspect(bob)["token"]
        assert as_kernel(server, token, "POST", "/sessions", session).status_code == 403
        assert as_kernel(server, token, "GET", "/sessions").status_code == 200
        cell = execute(
            bob,
            "from prophecy_jupyter.client import connect\n"
            "connect().run('b.ipynb', 'missing', '1', 'pyspark', print)",
        )
        assert not cell.ok and "not authorized" in cell.failure
    finally:
        bob.stop_channels()
