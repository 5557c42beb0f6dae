"""The JVMs' class archive: made in the background by a JVM of its own once the gateway's JVM has
warmed up, mapped by the JVM of the next gateway, and dropped when a JVM cannot start with it."""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest
import requests

from prophecy_jupyter.gateway.class_archive import ClassArchive
from tests.servers.gateway import run_statement, start_gateway, wait_for_state
from tests.waiting import wait_until

pytestmark = [pytest.mark.spark, pytest.mark.slow]

HEADERS = {"X-Requested-By": "test"}


def gateway_jvm(gateway) -> psutil.Process:
    """The gateway's shared JVM (its own child; an archive's builder JVM is a grandchild)."""
    found: list[psutil.Process] = []

    def started() -> bool:
        found[:] = [
            p
            for p in psutil.Process(gateway.process.pid).children()
            if p.name() == "java" and "org.apache.spark.deploy.SparkSubmit" in p.cmdline()
        ]
        return bool(found)

    wait_until(started, 60, "the gateway's JVM did not start")
    return found[0]


def maps(process: psutil.Process, path: Path) -> bool:
    """Whether the process has ``path`` mapped into its memory."""
    return str(path) in Path(f"/proc/{process.pid}/maps").read_text()


def one_statement(gateway) -> str:
    created = requests.post(f"{gateway.url}/sessions", json={"kind": "pyspark"}, headers=HEADERS, timeout=30)
    session = created.json()["id"]
    wait_for_state(gateway.url, session, {"idle"})
    done = run_statement(gateway.url, session, "spark.range(7).count()")
    return done["output"]["data"]["text/plain"]


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Path:
    """A folder whose archive the first gateway made after its warm-up."""
    folder = tmp_path_factory.mktemp("class-archives")
    archive = ClassArchive(folder)
    gateway = start_gateway("--class-archive", str(folder))
    try:
        jvm = gateway_jvm(gateway)
        assert not maps(jvm, archive.path), "there was no archive to start with"
        wait_until(archive.exists, 240, "the archive was not made")
        assert archive.path.stat().st_mode & 0o777 == 0o400
        assert not list(folder.glob("*.tmp")), "no partial file is left"
    finally:
        gateway.stop()
    return folder


def test_the_next_gateways_jvm_starts_with_the_archive(made):
    archive = ClassArchive(made)
    gateway = start_gateway("--class-archive", str(made))
    try:
        assert one_statement(gateway) == "7"
        assert maps(gateway_jvm(gateway), archive.path)
    finally:
        gateway.stop()


def test_a_broken_archive_is_dropped_and_the_jvm_starts_without_it(made, tmp_path):
    folder = tmp_path / "archives"
    folder.mkdir(mode=0o700)
    archive = ClassArchive(folder)
    whole = ClassArchive(made).path.read_bytes()
    archive.path.write_bytes(whole[: len(whole) // 3])  # a JVM mapping this dies of SIGBUS
    gateway = start_gateway("--class-archive", str(folder))
    try:
        assert one_statement(gateway) == "7"
        assert not maps(gateway_jvm(gateway), archive.path)
        assert not archive.path.exists() or archive.path.read_bytes() != whole[: len(whole) // 3]
        assert not list(Path.cwd().glob("hs_err_pid*.log")), "the crash report is not left here"
    finally:
        gateway.stop()


def test_a_build_still_running_is_stopped_with_the_gateway(tmp_path):
    folder = tmp_path / "archives"
    gateway = start_gateway("--class-archive", str(folder))
    try:
        wait_until(lambda: list(folder.glob("*.tmp")) or building(gateway), 120, "no build started")
    finally:
        gateway.stop()
    assert not ClassArchive(folder).exists()
    assert not list(folder.glob("*.tmp")), "the partial archive is removed"
    assert not [p for p in psutil.process_iter() if alive(p) and builds(p, folder)], "nor its processes"


def building(gateway) -> bool:
    return any(alive(p) and builds(p) for p in psutil.Process(gateway.process.pid).children(recursive=True))


def builds(process: psutil.Process, folder: Path | None = None) -> bool:
    """Whether the process is an archive's builder, or its JVM (of a build in ``folder``)."""
    try:
        line = " ".join(process.cmdline())
    except psutil.Error:
        return False
    return ("prophecy_jupyter.gateway.class_archive" in line or "ArchiveClassesAtExit" in line) and (
        folder is None or str(folder) in line
    )


def alive(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
