"""What a session leaves in the shared JVM goes when the session ends, deleted or killed: its
DataFrames, its session and their data. Each interpreter reaches the JVM through a Py4J server of
its own whose entry point is its session; when the session ends, the gateway drops that session's
temporary views and closes the server. Before, every ended session's data stayed in the JVM until
it ran out of memory, and then a killed interpreter's temporary views did."""

from __future__ import annotations

import os
import signal

import pytest
import requests

from tests.servers.gateway import (
    HEADERS,
    attached_spare,
    open_session,
    run_statement,
    start_gateway,
    wait_for_state,
)

pytestmark = [pytest.mark.spark, pytest.mark.slow]

HEAP_USED_MB = """
import time
runtime = sc._jvm.java.lang.Runtime.getRuntime()
for _ in range(3):
    sc._jvm.java.lang.System.gc()
    time.sleep(0.3)
print((runtime.totalMemory() - runtime.freeMemory()) // 2**20)
"""
# About 60 MB in the JVM: a pandas frame sent as rows, kept by a temporary view and a variable.
HOLD_DATA = """
import numpy as np, pandas as pd
frame = spark.createDataFrame(pd.DataFrame({"a": np.arange(400_000), "b": np.random.rand(400_000)}))
frame.createOrReplaceTempView("held")
print(spark.sql("SELECT count(*) FROM held").first()[0])
"""


def kill_interpreter(gateway, session: int) -> None:
    """SIGKILL the session's interpreter (as the system's out-of-memory killer would); wait for its end."""
    said = run_statement(gateway.url, session, "import os\nos.getpid()")["output"]["data"]["text/plain"]
    os.kill(int(said), signal.SIGKILL)
    assert wait_for_state(gateway.url, session, {"dead"}) == "dead"


@pytest.mark.parametrize("ending", ["deleted", "killed"])
def test_an_ended_sessions_data_leaves_the_shared_jvm(ending):
    gateway = start_gateway("--spare-interpreter", "--idle-timeout", "0")
    try:
        probe = open_session(gateway)
        wait_for_state(gateway.url, probe, {"idle"})

        def heap_used() -> int:
            said = run_statement(gateway.url, probe, HEAP_USED_MB)["output"]["data"]["text/plain"]
            return int(said)

        baseline = heap_used()
        held = []
        for round_ in range(4):
            if round_ % 2 == 0:
                attached_spare(gateway)  # this round's session takes the spare
            session = open_session(gateway)
            wait_for_state(gateway.url, session, {"idle"})
            counted = run_statement(gateway.url, session, HOLD_DATA)["output"]["data"]["text/plain"]
            assert counted == "400000"
            held.append(heap_used() - baseline)
            if ending == "killed":
                kill_interpreter(gateway, session)
            deleted = requests.delete(f"{gateway.url}/sessions/{session}", headers=HEADERS, timeout=60)
            assert deleted.status_code == 200
        left = heap_used() - baseline
        print(f"held {held} MB, left {left} MB")
        assert min(held) > 40, f"each session held {held} MB in the JVM"
        assert left < min(held) / 2, f"{left} MB left in the JVM after 4 sessions that held {held} MB"
    finally:
        gateway.stop()
