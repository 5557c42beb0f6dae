"""Start our gateway as a real subprocess for tests, and stop it afterwards."""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

import psutil
import requests

from tests.waiting import wait_until


@dataclass
class GatewayProcess:
    process: subprocess.Popen
    url: str
    token: str | None
    work_dir: str | None = None

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def stop(self) -> None:
        """Stop it; the work folder of one that was killed (by a test, or after 30 s) goes too."""
        stop_process(self.process)
        if self.process.returncode == -signal.SIGKILL and self.work_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)


def stop_process(process: subprocess.Popen) -> None:
    """SIGTERM, and SIGKILL to its process group after 30 s (servers the tests started)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def start_gateway(
    *options: str, token: str | None = None, token_file: bool = False, timeout: float = 60
) -> GatewayProcess:
    """``jupyter prophecy gateway --port 0`` with extra options; returns once it listens.

    With ``token`` clients need that token; with ``token_file`` the gateway makes its own under
    the data dir; with neither it serves without authentication.
    """
    read_end, write_end = os.pipe()
    env = dict(os.environ)
    env.pop("PROPHECY_GATEWAY_TOKEN", None)
    if token:
        env["PROPHECY_GATEWAY_TOKEN"] = token
    elif not token_file:
        options = ("--no-auth", *options)
    command = [
        sys.executable,
        "-m",
        "prophecy_jupyter.cli",
        "gateway",
        "--port",
        "0",
        "--ready-fd",
        str(write_end),
        "--parent-pid",
        str(os.getpid()),
        *options,
    ]
    process = subprocess.Popen(
        command, pass_fds=(write_end,), env=env, start_new_session=True, stdin=subprocess.DEVNULL
    )
    os.close(write_end)
    ready, _, _ = select.select([read_end], [], [], timeout)
    line = os.read(read_end, 4096) if ready else b""
    os.close(read_end)
    if not line:
        process.kill()
        raise RuntimeError("the gateway did not start")
    ready_line = json.loads(line)
    return GatewayProcess(process, f"http://127.0.0.1:{ready_line['port']}", token, ready_line["work_dir"])


def wait_for_state(
    url: str, session_id: int, states: set[str], timeout: float = 120, headers: dict[str, str] | None = None
) -> str:
    """Poll a session until it reaches one of ``states``."""
    deadline = time.monotonic() + timeout
    state = None
    while time.monotonic() < deadline:
        response = requests.get(f"{url}/sessions/{session_id}/state", headers=headers, timeout=10)
        state = "gone" if response.status_code == 404 else response.json()["state"]
        if state in states:
            return state
        time.sleep(0.1)
    raise AssertionError(f"session {session_id} stayed {state}, not {states}")


def run_statement(
    url: str,
    session_id: int,
    code: str,
    kind: str | None = None,
    timeout: float = 120,
    headers: dict[str, str] | None = None,
) -> dict:
    """Submit a statement and wait until it is available or cancelled."""
    body = {"code": code, **({"kind": kind} if kind else {})}
    created = requests.post(f"{url}/sessions/{session_id}/statements", json=body, headers=headers, timeout=10)
    assert created.status_code == 201, created.text
    return wait_for_statement(url, session_id, created.json()["id"], timeout, headers)


def wait_for_statement(
    url: str, session_id: int, statement_id: int, timeout: float = 120, headers: dict[str, str] | None = None
) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        statement = requests.get(
            f"{url}/sessions/{session_id}/statements/{statement_id}", headers=headers, timeout=10
        ).json()
        if statement["state"] in ("available", "cancelled"):
            return statement
        time.sleep(0.05)
    raise AssertionError(f"statement {statement_id} did not finish in {timeout} s")


HEADERS = {"X-Requested-By": "test"}


def interpreters(gateway) -> dict[int, str]:
    """The gateway's interpreter processes: pid -> the session each was started for ('spare': none;
    its environment as it started, so a spare taken since still says 'spare')."""
    found = {}
    for child in psutil.Process(gateway.process.pid).children():
        try:
            if "prophecy_jupyter.gateway.interpreter" in child.cmdline() and child.status() != "zombie":
                found[child.pid] = child.environ().get("PROPHECY_INTERPRETER_SESSION", "")
        except psutil.Error:
            continue
    return found


def attached_spare(gateway, taken: set[int] = frozenset()) -> int:
    """The pid of the gateway's spare (not one of ``taken``), once it holds a connection to the JVM."""

    def spare() -> int | None:
        for pid, claim in interpreters(gateway).items():
            if claim != "spare" or pid in taken:
                continue
            try:
                tcp = [c for c in psutil.Process(pid).net_connections("tcp") if c.status == "ESTABLISHED"]
            except psutil.Error:
                continue
            if tcp:
                return pid
        return None

    return wait_until(spare, 120, "no spare interpreter attached to the JVM")


def open_session(gateway, **body) -> int:
    created = requests.post(
        f"{gateway.url}/sessions", json={"kind": "pyspark", **body}, headers=HEADERS, timeout=30
    )
    assert created.status_code == 201, created.text
    return created.json()["id"]
