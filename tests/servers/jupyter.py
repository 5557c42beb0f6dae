"""A real Jupyter server with the extension, in its own process, and a small client for its APIs."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from jupyter_client import BlockingKernelClient

from prophecy_jupyter.client.link import API_PREFIX
from tests.servers.gateway import stop_process


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class JupyterServer:
    process: subprocess.Popen
    url: str
    token: str
    root: Path
    runtime_dir: Path
    log: Path

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        api: str = API_PREFIX,
        token: str | None = None,
        **kwargs,
    ) -> requests.Response:
        """A request with the server's token (or ``token``: another user's, with ``TokenPerUser``)."""
        headers = {"Authorization": f"token {token or self.token}", **kwargs.pop("headers", {})}
        return requests.request(
            method,
            f"{self.url}{api}{path}",
            json=body,
            timeout=kwargs.pop("timeout", 120),
            headers=headers,
            **kwargs,
        )

    def call(
        self, method: str, path: str, body: Any = None, expect: int | tuple = (200, 201, 202, 204), **kwargs
    ):
        response = self.request(method, path, body, **kwargs)
        expected = (expect,) if isinstance(expect, int) else expect
        assert response.status_code in expected, f"{method} {path}: {response.status_code} {response.text}"
        return (
            response.json()
            if response.content and response.headers.get("Content-Type", "").startswith("application/json")
            else None
        )

    def start_kernel(self, notebook: str, kernel: str = "python3", token: str | None = None) -> str:
        """A kernel started by the server for a notebook, as the server's owner (or ``token``'s user)."""
        body = {"path": notebook, "name": Path(notebook).name, "type": "notebook", "kernel": {"name": kernel}}
        session = self.call("POST", "/sessions", body, api="/api", token=token)
        return session["kernel"]["id"]

    def client(self, kernel_id: str) -> BlockingKernelClient:
        """Talk to a server-started kernel directly, as `jupyter console --existing` does."""
        client = BlockingKernelClient(connection_file=str(self.runtime_dir / f"kernel-{kernel_id}.json"))
        client.load_connection_file()
        # No heartbeat: jupyter_client calls a kernel dead after 1 s without a beat, and a loaded
        # machine (a JVM starting beside it) made it say so of live kernels. Waits have timeouts.
        client.start_channels(hb=False)
        client.wait_for_ready(timeout=60)
        return client

    def stop(self) -> None:
        stop_process(self.process)


def start_jupyter(
    base: Path,
    data_dir: Path,
    key: str,
    *options: str,
    port: int | None = None,
    env: dict[str, str] | None = None,
) -> JupyterServer:
    """``jupyter server`` with the extension on a free port; state under ``base`` and ``data_dir``
    (``env``: more environment for the server)."""
    root, runtime = base / "root", base / "runtime"
    for folder in (root, runtime, base / "home", base / "config", base / "data"):
        folder.mkdir(parents=True, exist_ok=True)
    token = "test-" + os.urandom(8).hex()
    port = port or free_port()
    environment = dict(
        os.environ,
        **(env or {}),
        HOME=str(base / "home"),
        JUPYTER_RUNTIME_DIR=str(runtime),
        JUPYTER_CONFIG_DIR=str(base / "config"),
        JUPYTER_DATA_DIR=str(base / "data"),
        PROPHECY_JUPYTER_KEY=key,
        PROPHECY_JUPYTER_DATA_DIR=str(data_dir),
    )
    log = base / f"server-{port}-{int(time.time() * 1000)}.log"
    command = [
        sys.executable,
        "-m",
        "jupyter_server",
        "--allow-root",
        "--no-browser",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        "--ip=127.0.0.1",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--ServerApp.allow_unauthenticated_access=False",
        *options,
    ]
    with open(log, "ab") as out:
        process = subprocess.Popen(
            command, env=environment, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = JupyterServer(process, f"http://127.0.0.1:{port}", token, root, runtime, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if server.request("GET", "/status", api="/api", timeout=2).status_code == 200:
                return server
        except requests.ConnectionError:
            pass
        if process.poll() is not None:
            break
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"the Jupyter server did not start; see {log}:\n{log.read_text()[-3000:]}")


def write_notebook(path: Path, fabric: str | None = None) -> None:
    metadata = {"prophecy": {"fabric": fabric}} if fabric else {}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"cells": [], "metadata": metadata, "nbformat": 4, "nbformat_minor": 5}))
