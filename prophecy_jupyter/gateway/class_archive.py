"""A class-data archive for the gateway's JVMs (Java's AppCDS): the classes a Spark driver loads
to start and to run its first jobs, mapped from one file, so that a JVM starts and warms up in
about half the time.

One archive per Java and Spark install, made once in the background at the lowest CPU priority
by a JVM of its own that starts, runs the warm-up and exits (Java writes the archive as it exits).
It is published by rename only after that JVM exited cleanly: a JVM that maps a truncated archive
crashes. Run as ``python -m prophecy_jupyter.gateway.class_archive ARCHIVE PARTIAL`` (the Spark
settings as JSON on stdin) it makes this install's archive ARCHIVE through the file PARTIAL, and
exits with 0 if it did.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from prophecy_jupyter.gateway.warm_up import warm_up

log = logging.getLogger("prophecy_jupyter.gateway")

JAVA_OPTIONS = "spark.driver.extraJavaOptions"
#: Java's notes on classes it cannot archive (signed jars, old class files) would fill the log.
QUIET = "-Xlog:cds=off -Xlog:cds+dynamic=off"
#: How long a JVM may take to write the archive once told to exit.
EXIT_TIMEOUT = 120.0
#: Temporary files older than this are left over from a build that was killed.
STALE_AFTER = 3600.0


def install_key() -> str:
    """What an archive is valid for: this Java and this Spark, jars included."""
    import pyspark

    java_home = os.environ.get("JAVA_HOME")
    java = os.path.join(java_home, "bin", "java") if java_home else shutil.which("java")
    spark_home = os.environ.get("SPARK_HOME") or os.path.dirname(pyspark.__file__)
    parts = [pyspark.__version__, os.path.realpath(java or "java")]
    for path in [java, *sorted(Path(spark_home).glob("jars/*.jar"))]:
        with contextlib.suppress(OSError, TypeError):
            status = os.stat(path)
            parts.append(f"{path}:{status.st_size}:{status.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def with_java_option(conf: dict[str, str], option: str) -> dict[str, str]:
    """``conf`` with one more option for the driver's JVM (after the ones it names)."""
    given = conf.get(JAVA_OPTIONS, "").strip()
    return {**conf, JAVA_OPTIONS: f"{given} {option}".strip()}


class ClassArchive:
    """The archive of this install in ``folder`` (a private folder of the gateway's user)."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.path = self.folder / f"spark-{install_key()}.jsa"
        self._builder: subprocess.Popen | None = None
        self._partial: Path | None = None

    def exists(self) -> bool:
        """Whether the archive is there, and only its owner (this user) can have written it and
        its folder: a JVM runs the classes an archive holds."""
        return self.path.is_file() and all(_only_mine(p) for p in (self.folder, self.path))

    def use(self, conf: dict[str, str]) -> dict[str, str]:
        """``conf`` with the archive mapped, when there is one (a JVM that crashes with it leaves
        its report beside it, not in the gateway's working folder)."""
        if not self.exists():
            return conf
        crash_report = self.folder / "hs_err_pid%p.log"
        return with_java_option(conf, f"-XX:SharedArchiveFile={self.path} -XX:ErrorFile={crash_report}")

    def discard(self) -> None:
        """Remove the archive (a JVM failed to start with it)."""
        self.path.unlink(missing_ok=True)

    def start_build(self, conf: dict[str, str]) -> None:
        """Make the archive in the background, at the lowest CPU priority, unless it exists."""
        if self.exists() or self._builder is not None:
            return
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._remove_stale()
        self._partial = self.folder / f".{self.path.name}.{os.getpid()}.{time.time_ns()}.tmp"
        command = ["nice", "-n", "19", sys.executable, "-m", __name__, str(self.path), str(self._partial)]
        self._builder = subprocess.Popen(
            command, stdin=subprocess.PIPE, process_group=0, cwd=self.folder, text=True
        )
        assert self._builder.stdin is not None
        with contextlib.suppress(OSError):
            self._builder.stdin.write(json.dumps(conf))
            self._builder.stdin.close()
        log.info("making the JVM's class archive in the background (%s)", self.path)

    def stop_build(self) -> None:
        """Stop a build still running; what it wrote so far is removed."""
        builder, self._builder = self._builder, None
        if builder is not None and builder.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(builder.pid, signal.SIGKILL)
            builder.wait()
        if self._partial is not None:
            self._partial.unlink(missing_ok=True)

    def _remove_stale(self) -> None:
        for partial in self.folder.glob(f".{self.path.name}.*.tmp"):
            with contextlib.suppress(OSError):
                if time.time() - partial.stat().st_mtime > STALE_AFTER:
                    partial.unlink()


def _only_mine(path: Path) -> bool:
    status = path.stat()
    return status.st_uid == os.geteuid() and not status.st_mode & 0o022


def build(path: Path, partial: Path, conf: dict[str, str]) -> bool:
    """Start a JVM that dumps its classes into ``partial`` as it exits, warm it up, stop it, and
    publish the archive as ``path``; whether it was made (one build per folder at a time)."""
    from pyspark.sql import SparkSession

    with open(path.parent / ".build.lock", "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        if path.exists():
            return False
        builder = SparkSession.builder.appName("prophecy-class-archive")
        for key, value in with_java_option(conf, f"-XX:ArchiveClassesAtExit={partial} {QUIET}").items():
            builder = builder.config(key, value)
        try:
            spark = builder.getOrCreate()
            warm_up(spark)
            jvm = spark.sparkContext._gateway.proc
            spark.stop()
            jvm.stdin.close()  # the JVM exits when its stdin ends, writing the archive
            code = jvm.wait(EXIT_TIMEOUT)
            if code != 0 or not partial.is_file() or partial.stat().st_size == 0:
                return False
            partial.chmod(0o400)
            os.replace(partial, path)
            return True
        finally:
            partial.unlink(missing_ok=True)


def main() -> None:
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    path, partial = Path(sys.argv[1]), Path(sys.argv[2])
    started = time.monotonic()
    made = build(path, partial, json.loads(sys.stdin.read() or "{}"))
    if made:
        log.info("the JVM's class archive was made in %.1f s: %s", time.monotonic() - started, path)
    sys.exit(0 if made else 1)


if __name__ == "__main__":
    main()
