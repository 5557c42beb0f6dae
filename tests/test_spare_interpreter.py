"""The gateway keeps a spare interpreter attached to the shared JVM: the next session takes it and
is ready at once, with its own settings and uploads folder; another spare replaces it once the
gateway is quiet; a spare that dies untaken is replaced; sessions that cannot share the spare's
JVM as it is start their own interpreter."""

from __future__ import annotations

import os
import signal
import time

import psutil
import pytest
import requests

from tests.servers.gateway import (
    attached_spare,
    interpreters,
    open_session,
    run_statement,
    start_gateway,
    wait_for_state,
)
from tests.waiting import wait_until

pytestmark = [pytest.mark.spark, pytest.mark.slow]


def interpreter_of(gateway, session: int) -> int:
    return int(
        run_statement(gateway.url, session, "import os\nprint(os.getpid())")["output"]["data"]["text/plain"]
    )


@pytest.fixture
def gateway():
    gateway = start_gateway("--spare-interpreter")
    yield gateway
    gateway.stop()


def test_a_session_takes_the_spare_and_another_replaces_it(gateway):
    spare = attached_spare(gateway)
    asked = time.monotonic()
    first = open_session(gateway, conf={"spark.sql.shuffle.partitions": "7"})
    wait_for_state(gateway.url, first, {"idle"})
    ready_in = time.monotonic() - asked
    assert interpreter_of(gateway, first) == spare, "the session runs in the spare"
    assert ready_in < 5, f"ready in {ready_in:.1f} s"
    said = run_statement(gateway.url, first, "print(spark.conf.get('spark.sql.shuffle.partitions'))")
    assert said["output"]["data"]["text/plain"] == "7", "the session's own settings apply"
    uploads = run_statement(gateway.url, first, "import os\nprint(os.environ['PROPHECY_GATEWAY_UPLOADS'])")
    assert uploads["output"]["data"]["text/plain"].endswith(f"/uploads/{first}"), "its own uploads folder"

    again = attached_spare(gateway, taken={spare})
    second = open_session(gateway)
    wait_for_state(gateway.url, second, {"idle"})
    assert interpreter_of(gateway, second) == again
    run_statement(gateway.url, first, "spark.range(3).createOrReplaceTempView('mine')")
    shown = run_statement(gateway.url, second, "print(spark.catalog.tableExists('mine'))")
    assert shown["output"]["data"]["text/plain"] == "False", "sessions made from spares stay apart"


def test_a_spare_that_dies_untaken_is_replaced(gateway):
    spare = attached_spare(gateway)
    os.kill(spare, signal.SIGKILL)
    replaced = attached_spare(gateway, taken={spare})
    session = open_session(gateway)
    wait_for_state(gateway.url, session, {"idle"})
    assert interpreter_of(gateway, session) == replaced


def test_a_session_that_needs_its_own_jvm_leaves_the_spare(gateway):
    spare = attached_spare(gateway)
    session = open_session(gateway, driverMemory="600m")  # a JVM's heap is set when it starts
    wait_for_state(gateway.url, session, {"idle"}, timeout=180)
    assert interpreter_of(gateway, session) != spare
    assert spare in interpreters(gateway), "the spare still waits for a session"


def shared_jvm(gateway) -> psutil.Process:
    """The gateway's shared JVM, once it runs."""

    def jvm() -> psutil.Process | None:
        children = psutil.Process(gateway.process.pid).children()
        return next((p for p in children if p.name() == "java" and p.status() != "zombie"), None)

    return wait_until(jvm, 60, "the gateway has no JVM")


def test_a_jvm_that_dies_is_started_again_its_sessions_end_and_the_spare_is_replaced(gateway):
    spare = attached_spare(gateway)
    doomed = open_session(gateway)
    wait_for_state(gateway.url, doomed, {"idle"})
    run_statement(gateway.url, doomed, "kept = 1")
    files = "print(spark.sparkContext._jvm.org.apache.spark.SparkFiles.getRootDirectory())"
    spark_dir = run_statement(gateway.url, doomed, files)["output"]["data"]["text/plain"].strip()
    assert os.path.isdir(spark_dir), spark_dir
    jvm = shared_jvm(gateway)
    jvm.kill()

    wait_for_state(gateway.url, doomed, {"dead"}, timeout=30)
    log = requests.get(f"{gateway.url}/sessions/{doomed}/log", timeout=10).json()["log"]
    assert any("the shared Spark JVM was killed by SIGKILL" in line for line in log), log
    wait_until(lambda: not psutil.pid_exists(spare), 30, "the spare attached to the dead JVM stays")

    replaced = attached_spare(gateway, taken={spare})
    assert shared_jvm(gateway).pid != jvm.pid
    session = open_session(gateway)
    wait_for_state(gateway.url, session, {"idle"})
    assert interpreter_of(gateway, session) == replaced, "the new spare serves the next session"
    counted = run_statement(gateway.url, session, "spark.range(4).count()")
    assert counted["output"]["data"]["text/plain"] == "4", "sessions run on the new JVM"
    gateway.stop()
    assert not os.path.exists(spark_dir), "the killed JVM's files are removed with the gateway's"
