"""The gateway's warm JVM: one SparkContext that interpreter processes attach to."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from prophecy_jupyter.gateway.class_archive import JAVA_OPTIONS, ClassArchive
from prophecy_jupyter.gateway.config import GatewayConfig
from prophecy_jupyter.gateway.processes import lower_priority
from prophecy_jupyter.gateway.warm_up import warm_up

log = logging.getLogger("prophecy_jupyter.gateway")
#: A JVM that dies within this many seconds of its start is started again only after a pause,
#: doubled at each such death in a row (up to the maximum), so that a JVM that cannot live does
#: not take the machine's CPU.
QUICK_DEATH = 60.0
RESTART_BACKOFF = 5.0
RESTART_BACKOFF_MAX = 300.0
#: The exit code of a Spark JVM that ran out of memory (SparkExitCode.OOM).
SPARK_OUT_OF_MEMORY = 52
#: How long stopping waits for a JVM still launching, so that it does not go on making files once
#: the gateway has removed its folder (below the 30 s the server gives a gateway to stop).
STOP_WAIT = 20.0


def prepare_environment() -> None:
    """Environment every JVM and Python worker the gateway starts inherits."""
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)


def temporary_folder(work_dir: str) -> str:
    """Java's temporary folder for the JVMs of the gateway whose work folder is ``work_dir`` (the
    gateway makes it once, beside its work folder)."""
    return os.path.join(work_dir, "tmp")


def base_spark_conf(
    config: GatewayConfig, work_dir: str, session_conf: dict[str, str] | None = None
) -> dict[str, str]:
    """Spark settings for a JVM the gateway owns (shared, or one isolated session's, given that
    session's own ``session_conf``), without its class archive. Its tables and its temporary files
    (Spark's scratch and block folders, which follow Java's temporary folder) go under the
    gateway's ``work_dir``, which the gateway removes as it stops: what a JVM killed on its way
    leaves goes too. Java options a session or the gateway's settings give come after that
    folder's, so they keep it unless they name another one."""
    conf = {
        "spark.master": config.master,
        "spark.driver.memory": config.driver_memory,
        "spark.ui.enabled": "true" if config.spark_ui else "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.warehouse.dir": os.path.join(work_dir, "warehouse"),
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.driver.host": "127.0.0.1",
        # Spark's RPC (block manager, executors) needs a secret: in local mode Spark makes one per
        # JVM and keeps it in memory, so other local users cannot talk to this JVM.
        "spark.authenticate": "true",
    }
    conf.update(config.spark_conf)
    conf.update(session_conf or {})
    given = conf.get(JAVA_OPTIONS, "")
    conf[JAVA_OPTIONS] = f"-Djava.io.tmpdir={temporary_folder(work_dir)} {given}".strip()
    return conf


@dataclass
class JvmConnection:
    """A Py4J server of its own on the shared JVM, for one interpreter, whose entry point is the
    interpreter's SparkSession (made here, so the host can empty it however the interpreter
    ends). Closing it drops every object that interpreter left in the JVM (its DataFrames, its
    session and their data)."""

    port: int
    secret: str = field(repr=False)
    server: Any = field(repr=False)
    session: Any = field(repr=False)
    generation: int

    def to_json(self) -> dict[str, Any]:
        """What the interpreter needs to attach."""
        return {"port": self.port, "secret": self.secret}


class SharedSparkHost:
    """Starts the shared SparkContext in a background thread as soon as the gateway starts (with
    the class archive when there is one), and starts it again if its JVM dies."""

    def __init__(self, conf: dict[str, str], niceness: int = 0, archive: ClassArchive | None = None):
        self._conf = conf
        self._niceness = niceness
        self._archive = archive
        self._ready: Future = Future()
        self._spark = None
        self._stopping = False
        self._launching = threading.Lock()
        """Held while a JVM launches, so that stopping waits for it."""
        self._generation = 0
        self.starting = True
        """Whether the JVM is still starting or warming up."""
        self.on_exit: Callable[[str], None] | None = None
        """Called (in the host's thread) with why the JVM died, before it is started again."""

    def start(self) -> None:
        threading.Thread(target=self._run, name="spark-host", daemon=True).start()

    def _run(self) -> None:
        lower_priority(self._niceness)  # this thread's, so the JVMs it launches inherit it
        quick_deaths = 0
        first = True
        while not self._stopping:
            started = time.monotonic()
            spark = self._start()
            if spark is None and first:
                return  # the first start failed (settings, install): sessions are told why
            first = False
            if spark is None:
                self._ready = Future()  # a restart failed: later sessions wait for the next one
            else:
                code = spark.sparkContext._gateway.proc.wait()
                if self._stopping:
                    return
                reason = f"the shared Spark JVM {describe_exit(code)}"
                log.error("%s after %.0f s; starting a new one", reason, time.monotonic() - started)
                self.starting = True
                self._spark = None
                self._generation += 1
                self._ready = Future()  # before on_exit, for the sessions that ask from now on
                if self.on_exit is not None:
                    self.on_exit(reason)
                forget_dead_context(spark)
            quick_deaths = quick_deaths + 1 if time.monotonic() - started < QUICK_DEATH else 0
            if quick_deaths:
                time.sleep(min(RESTART_BACKOFF_MAX, RESTART_BACKOFF * 2 ** (quick_deaths - 1)))

    def _start(self):
        """Launch and warm up the JVM; its SparkSession (None if it did not start: the sessions
        waiting for it are told why)."""
        started = time.monotonic()
        log.info("starting the shared Spark JVM")
        try:
            with self._launching:
                if self._stopping:
                    raise RuntimeError("the gateway is stopping")
                spark = self._launch()
                self._spark = spark
            spark.sparkContext.setLogLevel("WARN")
            self._ready.set_result(None)
            log.info("shared Spark %s ready in %.1f s", spark.version, time.monotonic() - started)
        except BaseException as exc:
            if not self._stopping:
                log.error("the shared Spark JVM did not start: %s: %s", type(exc).__name__, exc)
            self._ready.set_exception(exc)
            self.starting = False
            return None
        started = time.monotonic()
        try:  # sessions can start meanwhile
            warm_up(spark)
            log.info("the shared Spark JVM warmed up in %.1f s", time.monotonic() - started)
        except Exception as exc:  # a warm-up only: sessions work without it
            if not self._stopping:  # else stopping the JVM cut it short
                log.warning("warming up the shared Spark JVM failed: %s", exc)
        self.starting = False
        return spark

    def _launch(self):
        """The shared SparkSession: with the class archive if there is one, and without it if the
        JVM does not start with it (the archive is then removed, to be made again)."""
        from pyspark.sql import SparkSession

        def launch(conf: dict[str, str]):
            builder = SparkSession.builder.appName("prophecy-gateway")
            for key, value in conf.items():
                builder = builder.config(key, value)
            return builder.getOrCreate()

        if self._archive is None or not self._archive.exists():
            return launch(self._conf)
        try:
            return launch(self._archive.use(self._conf))
        except Exception as exc:
            log.warning("the JVM did not start with its class archive (%s); starting it without", exc)
            self._archive.discard()
            return launch(self._conf)

    async def connection(self) -> JvmConnection:
        """A Py4J server of its own on the JVM for one interpreter, once the JVM is up."""
        await asyncio.wrap_future(self._ready)
        return await asyncio.get_running_loop().run_in_executor(None, self._open)

    async def release(self, connection: JvmConnection) -> None:
        """Close an interpreter's Py4J server (nothing to do if its JVM has died since)."""
        if connection.generation == self._generation:
            await asyncio.get_running_loop().run_in_executor(None, self._close, connection)

    def _open(self) -> JvmConnection:
        """A new SparkSession on the shared context, and a Py4J server (as PySpark's own, on
        loopback with a secret) whose entry point it is."""
        spark, generation = self._spark, self._generation
        if spark is None:
            raise RuntimeError("the shared Spark JVM is starting again")
        jvm = spark.sparkContext._jvm
        session = spark._jsparkSession.newSession()
        secret = secrets.token_hex(32)
        server = (
            jvm.py4j.ClientServer.ClientServerBuilder(session)
            .authToken(secret)
            .javaPort(0)
            .javaAddress(jvm.java.net.InetAddress.getLoopbackAddress())
            .autoStartJavaServer(False)
            .build()
        )
        server.startServer()
        return JvmConnection(server.getJavaServer().getListeningPort(), secret, server, session, generation)

    def _close(self, connection: JvmConnection) -> None:
        """Drop the interpreter's temporary views, whether it stopped or was killed (the JVM keeps
        a session whose views hold data), then close its Py4J server. Straight from the session's
        catalog: listing them through ``spark.catalog`` lists the databases' tables too, and took
        seconds on a session that had not used its catalog yet."""
        with contextlib.suppress(Exception):
            connection.session.sessionState().catalog().tempViews().clear()
        with contextlib.suppress(Exception):
            connection.server.shutdown()
        for reference in (connection.server, connection.session):  # the host's own Py4J handles
            with contextlib.suppress(Exception):
                reference._detach()

    def is_modifiable(self, key: str) -> bool:
        """Whether a session may set ``key`` at run time on the shared context."""
        if self._spark is None:
            return False
        try:
            return bool(self._spark.conf.isModifiable(key))
        except Exception:
            return False

    @property
    def version(self) -> str | None:
        return self._spark.version if self._spark is not None else None

    def stop(self) -> None:
        """Stop the JVM. One still launching is waited for (at most ``STOP_WAIT`` seconds) and
        stopped once up: left to itself, it would make Java's temporary folder again after the
        gateway has removed its work folder."""
        self._stopping = True
        if self._launching.acquire(timeout=STOP_WAIT):
            self._launching.release()
        spark, self._spark = self._spark, None
        if spark is not None:
            spark.stop()


def describe_exit(code: int) -> str:
    """How a process ended, in words: its exit code, or the signal that killed it."""
    if code == SPARK_OUT_OF_MEMORY:
        return f"exited with code {code}, Spark's code for a JVM out of memory (raise driverMemory)"
    if code >= 0:
        return f"exited with code {code}"
    name = signal.Signals(-code).name if -code in signal.valid_signals() else f"signal {-code}"
    hint = " (the system may have run out of memory)" if -code == signal.SIGKILL else ""
    return f"was killed by {name}{hint}"


def forget_dead_context(spark) -> None:
    """Drop what PySpark keeps of a SparkContext whose JVM is gone (``stop()`` would call that JVM),
    so that the next ``getOrCreate`` launches a new JVM instead."""
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    context = spark.sparkContext
    accumulators = getattr(context, "_accumulatorServer", None)
    if accumulators is not None:
        with contextlib.suppress(Exception):
            accumulators.shutdown()
        context._accumulatorServer = None
    context._jsc = None
    with contextlib.suppress(Exception):
        SparkContext._gateway.close()
    with SparkContext._lock:
        SparkContext._active_spark_context = None
        SparkContext._gateway = None
        SparkContext._jvm = None
    SparkSession._instantiatedSession = None
    SparkSession._activeSession = None
