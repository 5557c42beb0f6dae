"""The local fabric: its gateway starts on first use and stops with the process that owns it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from tests.waiting import wait_until

pytestmark = [pytest.mark.spark, pytest.mark.slow]

OWNER = """
import os, sys
import psutil
from prophecy_jupyter.environment import local_username, services_of_this_process

user = local_username()
services = services_of_this_process(user)
service = services.sessions
first = service.run(user, "nb-1", "local", "spark.range(3).count()")
second = service.run(user, "nb-2", "local", "sc.applicationId")
gateway = psutil.Process(services.local_gateway.pid)
family = [gateway.pid] + [p.pid for p in gateway.children(recursive=True)]
print(first.result.text, second.result.text, *family, flush=True)
if sys.argv[1] == "kill":
    os.kill(os.getpid(), 9)
"""


def wait_gone(pids: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    alive = pids
    while alive and time.monotonic() < deadline:
        alive = [
            p for p in alive if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
        ]
        time.sleep(0.2)
    return alive


@pytest.mark.parametrize("ending", ["exit", "kill"])
def test_gateway_and_its_processes_stop_with_their_owner(data_dir, ending):
    owner = subprocess.run([sys.executable, "-c", OWNER, ending], capture_output=True, text=True, timeout=300)
    words = owner.stdout.split()
    assert words[:1] == ["3"], owner.stderr
    assert words[1].startswith("'local-"), "both notebooks' sessions share the gateway's JVM"
    family = [int(w) for w in words[2:]]
    assert len(family) >= 4, "gateway, JVM and one interpreter per session"
    assert wait_gone(family, 40) == [], f"left running after the owner ended with {ending}"
    logs = list((data_dir / "logs").glob("local-gateway-*.log"))
    assert logs and "gateway listening" in logs[0].read_text()


def gateways_of(pid: int) -> list[psutil.Process]:
    """The local gateways a process started (``jupyter prophecy gateway``): its own children
    only, since a process the gateway forks has the gateway's command line until it execs."""
    found = []
    for child in psutil.Process(pid).children():
        try:
            command = child.cmdline()
        except psutil.Error:  # gone, or a zombie not reaped yet
            continue
        if "prophecy_jupyter.cli.gateway_command" in command:
            found.append(child)
    return found


def test_a_server_warms_the_local_fabric_which_stops_unused_and_starts_again(tmp_path, data_dir):
    from tests.servers.jupyter import start_jupyter

    server = start_jupyter(
        tmp_path,
        data_dir,
        os.environ["PROPHECY_JUPYTER_KEY"],
        "--ProphecyJupyter.local_warm_start=always",
        "--ProphecyJupyter.local_idle_stop=6",
        "--ProphecyJupyter.local_class_archive=always",
    )
    try:
        [gateway] = wait_until(lambda: gateways_of(server.process.pid), 30, "the gateway was not started")
        command = gateway.cmdline()
        assert command[command.index("--nice") + 1] == "10" and "--exit-when-idle" in command
        assert command[command.index("--class-archive") + 1] == str(data_dir / "class-archives")
        logs = data_dir / "logs"
        wait_until(
            lambda: any("warmed up" in log.read_text() for log in logs.glob("local-gateway-*.log")),
            120,
            "the JVM did not warm up before any cell asked for it",
        )
        session = server.call("POST", "/sessions", {"notebook": "n.ipynb", "fabric": "local", "wait": True})
        run = server.call("POST", f"/sessions/{session['id']}/runs", {"code": "spark.range(3).count()"})
        assert server.call("GET", f"/runs/{run['id']}", params={"wait": "30"})["result"]["text"] == "3"
        server.call("DELETE", f"/sessions/{session['id']}")
        wait_until(
            lambda: not gateway.is_running() or gateway.status() == psutil.STATUS_ZOMBIE, 60, "still up"
        )

        again = server.call("POST", "/sessions", {"notebook": "n.ipynb", "fabric": "local", "wait": True})
        run = server.call("POST", f"/sessions/{again['id']}/runs", {"code": "spark.range(4).count()"})
        assert server.call("GET", f"/runs/{run['id']}", params={"wait": "30"})["result"]["text"] == "4"
        [restarted] = gateways_of(server.process.pid)
        assert restarted.pid != gateway.pid, "the next cell started the gateway again, and found it"
    finally:
        server.stop()


def test_the_work_folder_of_a_gateway_killed_with_its_jvm_is_removed(data_dir, monkeypatch):
    """A gateway removes its work folder (its JVMs' files) as it stops; one killed on its way (the
    system out of memory) cannot, so the process that started it does."""
    from prophecy_jupyter.services.local_gateway import LocalGateway
    from prophecy_jupyter.services.settings import ServiceSettings

    scratch = Path(tempfile.mkdtemp(prefix="lg-"))  # short: the gateway's Unix socket lives there
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", None)  # read again, as the gateway reads it
    local, second = LocalGateway(data_dir, ServiceSettings()), None
    try:
        local.endpoint()
        [first] = list(scratch.glob("prophecy-gateway-*"))
        os.killpg(local.pid, signal.SIGKILL)
        wait_until(lambda: local.pid is None, 30, "the killed gateway still runs")
        local.endpoint()
        assert not first.exists(), "the next start removes what the killed gateway left"
        [second] = list(scratch.glob("prophecy-gateway-*"))
        os.killpg(local.pid, signal.SIGKILL)
        wait_until(lambda: local.pid is None, 30, "the killed gateway still runs")
    finally:
        local.stop()
        stopped_clean = second is None or not second.exists()
        shutil.rmtree(scratch)
    assert stopped_clean, "stopping removes what the killed gateway left"
