"""The local fabric: its gateway starts on first use and stops with the process that owns it."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil
import pytest

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
