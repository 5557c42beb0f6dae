"""The gateway server: a Livy-compatible REST API over local PySpark."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import tempfile
import time

from tornado import httpserver, netutil, web

from prophecy_jupyter.gateway.batches import BatchManager
from prophecy_jupyter.gateway.class_archive import ClassArchive
from prophecy_jupyter.gateway.config import GatewayConfig
from prophecy_jupyter.gateway.handlers import ROUTES, NotFoundHandler
from prophecy_jupyter.gateway.sessions import FINISHED_STATES, SessionManager
from prophecy_jupyter.gateway.spark_host import (
    SharedSparkHost,
    base_spark_conf,
    prepare_environment,
    temporary_folder,
)

log = logging.getLogger("prophecy_jupyter.gateway")
#: Seconds with no JVM, session or statement starting or running before a missing class archive
#: is made.
ARCHIVE_AFTER_QUIET = 30.0


def make_app(config: GatewayConfig, sessions: SessionManager, batches: BatchManager) -> web.Application:
    return web.Application(
        ROUTES,
        default_handler_class=NotFoundHandler,
        gateway_config=config,
        session_manager=sessions,
        batch_manager=batches,
    )


class Gateway:
    """Everything one running gateway owns: its JVM, sessions, batches and HTTP server."""

    def __init__(self, config: GatewayConfig):
        self.config = config
        self.work_dir = tempfile.mkdtemp(prefix="prophecy-gateway-")
        os.chmod(self.work_dir, 0o700)
        os.mkdir(temporary_folder(self.work_dir), 0o700)
        self.host: SharedSparkHost | None = None
        self.conf: dict[str, str] = {}
        """Spark settings of the JVMs the gateway starts (without their class archive)."""
        self.archive = ClassArchive(config.class_archive) if config.class_archive else None
        self.sessions: SessionManager | None = None
        self.batches = BatchManager(config, self.work_dir)
        self.server: httpserver.HTTPServer | None = None
        self.port: int | None = None
        self._stopped = asyncio.Event()

    async def start(self) -> int:
        """Start listening (the JVM warms up in the background); return the bound port."""
        # The port first: a gateway that cannot listen starts nothing.
        sockets = netutil.bind_sockets(self.config.port, self.config.host)
        prepare_environment()
        conf = base_spark_conf(self.config, self.work_dir)
        self.conf = conf
        if self.config.isolation == "shared":
            self.host = SharedSparkHost(conf, self.config.niceness, self.archive)
            self.host.start()
        self.sessions = SessionManager(self.config, self.host, self.work_dir, self.archive)
        await self.sessions.start()
        self.port = sockets[0].getsockname()[1]
        app = make_app(self.config, self.sessions, self.batches)
        self.server = httpserver.HTTPServer(app, max_body_size=self.config.max_body_bytes)
        self.server.add_sockets(sockets)
        log.info("gateway listening on http://%s:%d", self.config.host, self.port)
        return self.port

    async def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        if self.sessions is not None:
            await self.sessions.shutdown()
        await self.batches.shutdown()
        if self.archive is not None:
            self.archive.stop_build()
        if self.host is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.host.stop)
        shutil.rmtree(self.work_dir, ignore_errors=True)
        self._stopped.set()

    async def wait_stopped(self) -> None:
        await self._stopped.wait()

    def in_use(self) -> bool:
        """Whether a session or a batch is alive (starting, running or idle), or the JVM is still
        starting or warming up."""
        return self._any(lambda state: state not in FINISHED_STATES)

    def working(self) -> bool:
        """Whether a JVM, a session, a statement or a batch is starting or running (idle sessions
        do not count)."""
        return self._any(lambda state: state in ("starting", "busy"))

    def _any(self, counts) -> bool:
        if self.host is not None and self.host.starting:
            return True
        sessions = self.sessions.sessions.values() if self.sessions is not None else ()
        return any(counts(s.state) for s in sessions) or any(
            b.state in ("starting", "running") for b in self.batches.batches.values()
        )


async def _make_archive_when_quiet(gateway: Gateway, archive: ClassArchive) -> None:
    """Make the JVMs' class archive once nothing has worked for ``ARCHIVE_AFTER_QUIET`` seconds,
    so that its JVM takes no memory or CPU from a user's first cells."""
    quiet_since = time.monotonic()
    while not archive.exists():
        await asyncio.sleep(5.0)
        if gateway.working():
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= ARCHIVE_AFTER_QUIET:
            archive.start_build(gateway.conf)
            return


async def _watch_idle(gateway: Gateway, seconds: float) -> None:
    """Stop once nothing has used the gateway for ``seconds``."""
    idle_since = time.monotonic()
    while True:
        await asyncio.sleep(min(5.0, seconds / 4))
        if gateway.in_use():
            idle_since = time.monotonic()
        elif time.monotonic() - idle_since >= seconds:
            log.info("unused for %.0f s; stopping", seconds)
            await gateway.stop()
            return


async def _watch_parent(pid: int, gateway: Gateway) -> None:
    """Stop when the process that started us is gone."""
    while True:
        await asyncio.sleep(1)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            log.info("parent process %d exited; stopping", pid)
            await gateway.stop()
            return


async def serve(config: GatewayConfig, parent_pid: int | None = None, ready_fd: int | None = None) -> None:
    """Run a gateway until SIGTERM/SIGINT (or until ``parent_pid`` exits)."""
    gateway = Gateway(config)
    try:
        port = await gateway.start()
    except BaseException:
        await gateway.stop()  # its work folder too
        raise
    if ready_fd is not None:
        with os.fdopen(ready_fd, "w") as ready:
            ready.write(json.dumps({"port": port, "pid": os.getpid(), "work_dir": gateway.work_dir}) + "\n")
    loop = asyncio.get_running_loop()
    stopping: list[asyncio.Task] = []

    def request_stop() -> None:
        if not stopping:
            stopping.append(asyncio.ensure_future(gateway.stop()))

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, request_stop)
    watchers = [asyncio.ensure_future(_watch_parent(parent_pid, gateway))] if parent_pid else []
    if config.exit_when_idle > 0:
        watchers.append(asyncio.ensure_future(_watch_idle(gateway, config.exit_when_idle)))
    if gateway.archive is not None:
        watchers.append(asyncio.ensure_future(_make_archive_when_quiet(gateway, gateway.archive)))
    await gateway.wait_stopped()
    for watcher in watchers:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
