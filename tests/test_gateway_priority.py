"""The local fabric's JVM and interpreters yield the CPU: they run below the gateway's priority,
whose HTTP loop (like the Jupyter server beside it) keeps the priority it was given, and in the
gateway's session, where the kernel's per-session CPU groups (autogroup) let that niceness count;
the server's local gateway leads a session whose CPU group ranks below the server's."""

from __future__ import annotations

import os
from pathlib import Path

import psutil
import pytest
import requests

from prophecy_jupyter.services.local_gateway import LocalGateway
from prophecy_jupyter.services.settings import ServiceSettings
from tests.servers.gateway import start_gateway, wait_for_state, wait_for_statement

pytestmark = [pytest.mark.spark, pytest.mark.slow]


def thread_nices(pid: int) -> set[int]:
    """The niceness of every thread of a process (on Linux each thread has its own)."""
    nices = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        nices.add(int(fields[16]))  # field 19 of stat: nice
    return nices


def autogroup_fields(pid: int) -> list[str] | None:
    """``/proc/<pid>/autogroup`` as ``[group, "nice", niceness]``, where the kernel has such groups.

    A process whose session never left the kernel's default group (as under an init that never
    called setsid) reads an empty file: that group is the root one, at the niceness of 0."""
    path = Path(f"/proc/{pid}/autogroup")
    if not path.exists():
        return None
    return path.read_text().split() or ["/", "nice", "0"]


def cpu_group(pid: int) -> str | None:
    """The kernel's CPU group of a process's session (autogroup), where the kernel has them."""
    fields = autogroup_fields(pid)
    return fields[0] if fields else None


def cpu_group_nice(pid: int) -> int:
    """The niceness of a process's session's CPU group (autogroup)."""
    return int(autogroup_fields(pid)[-1])


@pytest.mark.skipif(not Path("/proc/self/autogroup").exists(), reason="no per-session CPU groups here")
def test_the_local_gateways_session_ranks_below_the_server_that_started_it(tmp_path):
    own = cpu_group_nice(os.getpid())
    gateway = LocalGateway(tmp_path, ServiceSettings(local_niceness=6, local_warm_start="never"))
    try:
        gateway.endpoint()
        assert os.getsid(gateway.pid) == gateway.pid, "the gateway leads a session of its own"
        assert cpu_group(gateway.pid) != cpu_group(os.getpid())
        assert cpu_group_nice(gateway.pid) == 6, "its session's CPU group yields to the server's"
        assert cpu_group_nice(os.getpid()) == own, "the server's own group keeps its rank"
    finally:
        gateway.stop()


def test_the_jvm_and_interpreters_run_below_the_gateways_priority():
    gateway = start_gateway("--nice", "7", token="nice-token")
    headers = gateway.headers() | {"X-Requested-By": "test"}
    try:
        created = requests.post(
            f"{gateway.url}/sessions", json={"kind": "pyspark"}, headers=headers, timeout=30
        )
        session = created.json()["id"]
        wait_for_state(gateway.url, session, {"idle"}, headers=headers)
        family = psutil.Process(gateway.process.pid)
        gateway_process = next(
            p for p in [family, *family.children(recursive=True)] if "gateway" in " ".join(p.cmdline())
        )
        jvm = next(p for p in gateway_process.children(recursive=True) if p.name() == "java")
        interpreter = next(
            p
            for p in gateway_process.children(recursive=True)
            if "prophecy_jupyter.gateway.interpreter" in p.cmdline()
        )
        own = os.getpriority(os.PRIO_PROCESS, 0)
        assert gateway_process.nice() == own, "the gateway's HTTP loop keeps its priority"
        assert thread_nices(jvm.pid) == {own + 7}, "every thread of the JVM"
        assert thread_nices(interpreter.pid) == {own + 7}
        assert os.getsid(interpreter.pid) == os.getsid(gateway_process.pid), "in the gateway's session"
        assert cpu_group(interpreter.pid) == cpu_group(gateway_process.pid)
        assert os.getpgid(interpreter.pid) == interpreter.pid, "in a process group of its own, stopped as one"
        statement = requests.post(
            f"{gateway.url}/sessions/{session}/statements",
            json={"code": "spark.range(5).count()"},
            headers=headers,
            timeout=30,
        ).json()
        done = wait_for_statement(gateway.url, session, statement["id"], headers=headers)
        assert done["output"]["data"]["text/plain"] == "5", "the session works at its priority"
    finally:
        gateway.stop()
