"""Interactive sessions of the gateway: interpreter processes, statement queues, lifetimes."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import os
import re
import secrets
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from prophecy_jupyter.gateway import errors, processes, protocol
from prophecy_jupyter.gateway.bodies import CreateSession, parse_duration
from prophecy_jupyter.gateway.class_archive import ClassArchive
from prophecy_jupyter.gateway.config import (
    SUPPORTED_SESSION_KINDS,
    SUPPORTED_STATEMENT_KINDS,
    GatewayConfig,
)
from prophecy_jupyter.gateway.logs import LogBuffer, pump
from prophecy_jupyter.gateway.spare import SpareKeeper
from prophecy_jupyter.gateway.spark_host import JvmConnection, SharedSparkHost, base_spark_conf
from prophecy_jupyter.gateway.uploads import Uploads

LIVY_SESSION_KINDS = {"spark", "scala", "pyspark", "python", "sparkr", "r", "sql", "shared", "snowpark"}
#: The module each session kind's interpreter runs (Spark for the others).
INTERPRETERS = {"snowpark": "prophecy_jupyter.gateway.snowpark_interpreter"}
SPARK_INTERPRETER = "prophecy_jupyter.gateway.interpreter"
#: Livy takes ``python`` as another name for ``pyspark``.
SESSION_KIND_ALIASES = {"python": "pyspark"}
#: The kind of a statement that names none, by its session's kind (``pyspark`` for the others).
DEFAULT_STATEMENT_KIND = {"sql": "sql"}
FINISHED_STATES = {"dead", "killed", "error", "success"}
RUNNING_STATES = {"idle", "busy"}
TERMINAL_STATEMENT_STATES = {"available", "cancelled"}
# A client's unique run marker (a trailing comment). The same marked code arriving twice is one
# statement delivered twice (a retry after a lost answer), so it is answered, not run again.
_RUN_MARKER = re.compile(r"prophecy-run: [0-9a-f]{32}\s*$")


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Statement:
    id: int
    code: str
    kind: str
    state: str = "waiting"
    output: dict[str, Any] | None = None
    progress: float = 0.0
    detail: str | None = None
    """What the statement waits on, in words (an extension of Livy's statement; None: nothing)."""
    started: int = 0
    completed: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def notify(self) -> None:
        """Wake long-poll waiters; later waiters wait for the next change."""
        self.changed.set()
        self.changed = asyncio.Event()

    @property
    def finished(self) -> bool:
        return self.state in TERMINAL_STATEMENT_STATES

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "code": self.code,
            "state": self.state,
            "output": self.output,
            "progress": self.progress,
            "detail": self.detail,
            "started": self.started,
            "completed": self.completed,
        }


@dataclass
class Session:
    id: int
    request: CreateSession
    kind: str
    owner: str | None
    proxy_user: str | None
    idle_timeout: float | None
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    state: str = "not_started"
    app_id: str | None = None
    spark_ui_url: str | None = None
    log: LogBuffer = field(default_factory=LogBuffer)
    statements: dict[int, Statement] = field(default_factory=dict)
    waiting: collections.deque[Statement] = field(default_factory=collections.deque)
    executing: Statement | None = None
    statement_ids: itertools.count = field(default_factory=itertools.count)
    completion_refs: itertools.count = field(default_factory=itertools.count)
    completions: dict[int, asyncio.Future] = field(default_factory=dict)
    process: asyncio.subprocess.Process | None = None
    writer: asyncio.StreamWriter | None = None
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    last_activity: float = field(default_factory=time.monotonic)
    last_access: float = field(default_factory=time.monotonic)
    finished_at: float | None = None
    deleting: bool = False
    jvm: JvmConnection | None = None
    """The interpreter's own Py4J server on the shared JVM (None: not on the shared JVM)."""
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def name(self) -> str | None:
        return self.request.name

    def move_to(self, state: str) -> None:
        """Change state and wake long polls waiting for a change."""
        if state != self.state:
            self.state = state
            self.changed.set()
            self.changed = asyncio.Event()

    def touch(self) -> None:
        """Any request about the session counts as a heartbeat."""
        self.last_access = time.monotonic()

    def record_activity(self) -> None:
        """Submit, cancel and completion reset the idle timer (GET polls do not)."""
        self.last_activity = time.monotonic()

    def to_json(self) -> dict[str, Any]:
        r = self.request
        return {
            "id": self.id,
            "name": r.name,
            "appId": self.app_id,
            "owner": self.owner,
            "proxyUser": self.proxy_user,
            "state": self.state,
            "kind": self.kind,
            "appInfo": {"driverLogUrl": None, "sparkUiUrl": self.spark_ui_url},
            "log": self.log.tail(10),
            "ttl": r.ttl,
            "idleTimeout": r.idleTimeout,
            "driverMemory": r.driverMemory,
            "driverCores": r.driverCores or 0,
            "executorMemory": r.executorMemory,
            "executorCores": r.executorCores or 0,
            "conf": r.conf or {},
            "archives": r.archives or [],
            "files": r.files or [],
            "heartbeatTimeoutInSecond": r.heartbeatTimeoutInSecond or 0,
            "jars": r.jars or [],
            "numExecutors": r.numExecutors or 0,
            "pyFiles": r.pyFiles or [],
            "queue": r.queue,
        }


class SessionManager:
    """Owns every interactive session of one gateway."""

    def __init__(
        self,
        config: GatewayConfig,
        host: SharedSparkHost | None,
        work_dir: str,
        archive: ClassArchive | None = None,
    ):
        self.config = config
        self.host = host
        self.archive = archive
        self.work_dir = work_dir
        self.uploads = Uploads(work_dir)
        self.instance = secrets.token_hex(4)
        self.sessions: dict[int, Session] = {}
        self._ids = itertools.count()
        self._socket_path = os.path.join(work_dir, "interpreters.sock")
        self._server: asyncio.AbstractServer | None = None
        self._reaper: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()
        self.spares = SpareKeeper(
            lambda token: self._spawn_interpreter(SPARK_INTERPRETER, token, protocol.SPARE),
            self._jvm_connection,
            self._spawn,
            enabled=host is not None and config.spare_interpreter,
            release=host.release if host is not None else None,
        )

    async def start(self) -> None:
        with protocol.bindable(self._socket_path) as address:
            self._server = await asyncio.start_unix_server(
                self._on_interpreter, path=address, limit=protocol.STREAM_BUFFER_BYTES
            )
        os.chmod(self._socket_path, 0o600)
        self._reaper = asyncio.create_task(self._reap_forever())
        if self.host is not None:
            loop = asyncio.get_running_loop()
            self.host.on_exit = lambda reason: loop.call_soon_threadsafe(self._on_jvm_exit, reason)
        self.spares.keep()

    # -- sessions ---------------------------------------------------------------------------

    async def create(self, request: CreateSession, owner: str | None, do_as: str | None) -> Session:
        kind = request.kind or "shared"
        if kind not in LIVY_SESSION_KINDS:
            raise errors.bad_request(f"Invalid kind: {kind}")
        if kind not in SUPPORTED_SESSION_KINDS:
            raise errors.rejected(
                f"Rejected, session kind '{kind}' is not supported by this gateway "
                f"(supported: {', '.join(SUPPORTED_SESSION_KINDS)})"
            )
        if (kind in INTERPRETERS) != (request.snowflake is not None):
            raise errors.bad_request("A snowpark session takes a snowflake connection, and only it does")
        idle_timeout = None
        if request.ttl is not None:
            idle_timeout = parse_duration(request.ttl, "ttl")
        if request.idleTimeout is not None:
            idle_timeout = parse_duration(request.idleTimeout, "idleTimeout")
        if request.heartbeatTimeoutInSecond is not None and request.heartbeatTimeoutInSecond < 0:
            raise errors.rejected("Rejected, heartbeatTimeoutInSecond must be >= 0")
        live = [s for s in self.sessions.values() if s.state not in FINISHED_STATES]
        if len(live) >= self.config.max_sessions:
            raise errors.rejected("Rejected, too many sessions are being created!")
        if request.name is not None:
            for other in live:
                if other.name == request.name:
                    raise errors.rejected(f"Duplicate session name: {request.name} for session {other.id}")
        session = Session(
            id=next(self._ids),
            request=request,
            kind=SESSION_KIND_ALIASES.get(kind, kind),
            owner=owner,
            proxy_user=do_as or request.proxyUser,
            idle_timeout=idle_timeout,
            state="starting",
        )
        self.sessions[session.id] = session
        self._spawn(self._start_interpreter(session))
        return session

    def get(self, key: str) -> Session:
        """A session by id or by name (Livy 0.6+)."""
        session = None
        if key.isdigit():
            session = self.sessions.get(int(key))
        if session is None:
            session = next((s for s in self.sessions.values() if s.name == key), None)
        if session is None:
            raise errors.session_not_found(key)
        return session

    async def delete(self, session: Session) -> None:
        """Stop the session's interpreter and forget the session (later GETs give 404)."""
        if session.deleting:
            return
        session.deleting = True
        session.move_to("shutting_down")
        await self._stop_process(session)
        self._release_jvm(session)
        session.move_to("dead")
        self._wake_statements(session)
        self.uploads.discard(session.id)
        self.sessions.pop(session.id, None)

    async def _start_interpreter(self, session: Session) -> None:
        spare = self.spares.take() if self._may_take_spare(session) else None
        if spare is not None:
            session.process, session.log = spare.process, spare.log
            spare.taken.set_result(session)
        else:
            module = INTERPRETERS.get(session.kind, SPARK_INTERPRETER)
            try:
                session.process = await self._spawn_interpreter(module, session.token, str(session.id))
            except OSError as exc:
                self._fail(session, f"could not start the interpreter: {exc}")
                return
            if session.deleting:
                await self._stop_process(session)
                return
            self._spawn(pump(session.process, session.log))
        self._spawn(self._watch_exit(session))
        try:
            await asyncio.wait_for(session.connected.wait(), self.config.startup_timeout)
        except TimeoutError:
            if session.state == "starting":
                self._fail(session, f"did not start within {self.config.startup_timeout:.0f} s")
                await self._stop_process(session)

    async def _spawn_interpreter(self, module: str, token: str, claim: str) -> asyncio.subprocess.Process:
        env = {
            protocol.SOCKET_ENV: protocol.reachable(self._socket_path),  # it starts in work_dir
            protocol.TOKEN_ENV: token,
            protocol.SESSION_ENV: claim,
            "PYTHONUNBUFFERED": "1",
        }
        command = [sys.executable, "-m", module]
        return await processes.spawn(command, self.work_dir, env, self.config.niceness)

    def _may_take_spare(self, session: Session) -> bool:
        """Whether the session runs on the shared JVM as it is (so a spare interpreter serves it)."""
        request = session.request
        if session.kind in INTERPRETERS or request.own_jvm_reason() is not None or self.host is None:
            return False
        return all(self.host.is_modifiable(key) for key in request.spark_conf())

    async def _jvm_connection(self) -> JvmConnection:
        assert self.host is not None
        return await self.host.connection()

    async def _watch_exit(self, session: Session) -> None:
        assert session.process
        code = await session.process.wait()
        if session.deleting:
            return
        session.log.add(f"interpreter exited with code {code}")
        self._fail(session, f"the interpreter exited with code {code}")

    def _on_jvm_exit(self, reason: str) -> None:
        """The shared JVM died: its sessions end (their state was in it), and the spare attached
        to it is replaced by one that waits for the next JVM."""
        for session in list(self.sessions.values()):
            if session.jvm is not None and not session.deleting and session.state not in FINISHED_STATES:
                self._fail(session, reason)
                self._spawn(self._stop_process(session))
        self.spares.renew()

    def _fail(self, session: Session, reason: str) -> None:
        if session.state in FINISHED_STATES:
            return
        session.log.add(f"session {session.id} is dead: {reason}")
        self._release_jvm(session)
        session.move_to("dead")
        session.finished_at = time.monotonic()
        self.uploads.discard(session.id)
        for future in session.completions.values():
            if not future.done():
                future.set_exception(errors.not_running("dead"))
        self._wake_statements(session)

    def _release_jvm(self, session: Session) -> None:
        """Close the session's Py4J server on the shared JVM, and with it what it left there."""
        connection, session.jvm = session.jvm, None
        if connection is not None and self.host is not None:
            self._spawn(self.host.release(connection))

    @staticmethod
    def _wake_statements(session: Session) -> None:
        for statement in session.statements.values():
            statement.notify()

    async def _stop_process(self, session: Session) -> None:
        process = session.process
        if process is None or process.returncode is not None:
            return
        if session.writer is not None:
            with contextlib.suppress(Exception):
                session.writer.write(protocol.encode({"op": "shutdown"}))
                await session.writer.drain()
        try:
            await asyncio.wait_for(process.wait(), 5)
        except TimeoutError:
            await processes.stop(process, signal.SIGKILL, grace=5)

    # -- interpreter connections ------------------------------------------------------------

    async def _on_interpreter(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        hello = await protocol.read_message(reader) or {}
        claim, given = str(hello.get("session")), str(hello.get("token", "")).encode(errors="replace")
        if claim == protocol.SPARE:
            spare = self.spares.claim(given)
            if spare is None:
                writer.close()
                return
            session, error = await self.spares.attach(spare, reader, writer)
            if session is not None:
                session.jvm = spare.jvm  # the session's now, released when it ends
            if error is not None and session is not None:
                session.connected.set()
                self._fail(session, error)
                await self._stop_process(session)
                session = None
        else:
            session = self.sessions.get(int(claim)) if claim.isdigit() else None
            if session is not None and not secrets.compare_digest(given, session.token.encode()):
                session = None
        if session is None or session.deleting or session.state in FINISHED_STATES:
            writer.close()
            return
        session.writer = writer
        try:
            await self._send(session, await self._start_message(session))
        except Exception as exc:
            self._fail(session, f"could not reach the shared Spark JVM: {exc}")
            await self._stop_process(session)
            return
        while (message := await protocol.read_message(reader)) is not None:
            self._on_message(session, message)

    async def _start_message(self, session: Session) -> dict[str, Any]:
        request = session.request
        uploads = self.uploads.folder(session.id)
        if request.snowflake is not None:
            connection, request.snowflake = request.snowflake, None  # not kept here
            return {
                "op": "start",
                "session": session.id,
                "uploads": uploads,
                "connection": connection,
                "sql_max_rows": self.config.sql_max_rows,
            }
        message: dict[str, Any] = {
            "op": "start",
            "session": session.id,
            "uploads": uploads,
            "job_group_prefix": f"livy-{self.instance}-{session.id}",
            "sql_max_rows": self.config.sql_max_rows,
            "app_name": request.name or f"livy-session-{session.id}",
        }
        conf = request.spark_conf()
        reason = request.own_jvm_reason()
        if self.host is not None and reason is None:
            fixed = sorted(key for key in conf if not self.host.is_modifiable(key))
            if fixed:
                reason = f"{', '.join(fixed)} cannot be set on the shared Spark context"
            else:
                if session.jvm is None:  # not a spare's, which attached before
                    session.jvm = await self.host.connection()
                    if session.deleting or session.state in FINISHED_STATES:
                        self._release_jvm(session)
                        raise errors.not_running(session.state)
                message.update(mode="shared", jvm=session.jvm.to_json(), runtime_conf=conf)
        isolate = self.host is None or reason is not None
        if reason is not None:
            session.log.add(f"starting in its own JVM: {reason}")
        if isolate:
            spark_conf = base_spark_conf(self.config, self.work_dir, conf)
            if self.archive is not None:
                spark_conf = self.archive.use(spark_conf)
            message.update(mode="process", spark_conf=spark_conf)
        return message

    async def _send(self, session: Session, message: dict[str, Any]) -> None:
        if session.writer is None:
            raise errors.not_running(session.state)
        session.writer.write(protocol.encode(message))
        await session.writer.drain()

    def _on_message(self, session: Session, message: dict[str, Any]) -> None:
        op = message.get("op")
        if op == "ready":
            session.app_id = message.get("app_id")
            session.spark_ui_url = message.get("spark_ui_url")
            if session.state == "starting":
                session.move_to("idle")
                session.record_activity()
            session.connected.set()
            self._dispatch(session)
        elif op == "failed":
            session.connected.set()
            self._fail(session, message.get("error", "start-up failed"))
        elif op == "result":
            self._on_result(session, message)
        elif op == "progress":
            statement = session.statements.get(message["id"])
            if statement is not None and statement.state in ("running", "cancelling"):
                if message.get("progress") is not None:
                    statement.progress = float(message["progress"])
                statement.detail = message.get("detail")
                statement.notify()
        elif op == "completion":
            future = session.completions.pop(message["ref"], None)
            if future is not None and not future.done():
                future.set_result(message["candidates"])

    def _on_result(self, session: Session, message: dict[str, Any]) -> None:
        statement = session.statements.get(message["id"])
        session.executing = None
        if statement is not None:
            output = dict(message["output"])
            output["execution_count"] = statement.id
            statement.output = output
            statement.progress = 1.0
            statement.detail = None
            statement.completed = now_ms()
            cancelled = message.get("cancelled") or statement.state in ("cancelling", "cancelled")
            statement.state = "cancelled" if cancelled else "available"
            statement.notify()
        self._dispatch(session)

    # -- statements -------------------------------------------------------------------------

    def submit(self, session: Session, code: str, kind: str | None) -> dict[str, Any]:
        """Queue a statement; the answer shows it as Livy does, still ``waiting``."""
        kind = kind or DEFAULT_STATEMENT_KIND.get(session.kind, "pyspark")
        if kind not in SUPPORTED_STATEMENT_KINDS:
            raise errors.bad_request(
                f"Unsupported statement kind '{kind}' (supported: {', '.join(SUPPORTED_STATEMENT_KINDS)})"
            )
        if session.state not in RUNNING_STATES:
            raise errors.not_running(session.state)
        session.record_activity()
        if _RUN_MARKER.search(code):
            resent = next((s for s in session.statements.values() if s.code == code), None)
            if resent is not None:
                return resent.to_json()
        statement = Statement(id=next(session.statement_ids), code=code, kind=kind)
        session.statements[statement.id] = statement
        session.waiting.append(statement)
        self._forget_old_statements(session)
        snapshot = statement.to_json()
        self._dispatch(session)
        return snapshot

    def _forget_old_statements(self, session: Session) -> None:
        excess = len(session.statements) - self.config.retained_statements
        for statement_id in list(session.statements)[: max(excess, 0)]:
            if session.statements[statement_id].finished:
                del session.statements[statement_id]

    def _dispatch(self, session: Session) -> None:
        if session.executing is not None or session.state not in RUNNING_STATES:
            return
        while session.waiting:
            statement = session.waiting.popleft()
            if statement.state != "waiting":
                continue
            statement.state = "running"
            statement.started = now_ms()
            session.executing = statement
            session.move_to("busy")
            statement.notify()
            self._spawn(
                self._send(
                    session,
                    {
                        "op": "execute",
                        "id": statement.id,
                        "kind": statement.kind,
                        "code": statement.code,
                    },
                )
            )
            return
        session.move_to("idle")

    def statement(self, session: Session, statement_id: str) -> Statement:
        statement = session.statements.get(int(statement_id)) if statement_id.isdigit() else None
        if statement is None:
            raise errors.statement_not_found()
        return statement

    async def wait_for_change(self, subject: Statement | Session, timeout: float) -> None:
        """Long poll: return when the statement or session changes, or after ``timeout`` seconds."""
        if (isinstance(subject, Statement) and subject.finished) or timeout <= 0:
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(subject.changed.wait(), timeout)

    async def wait_for_end(self, session: Session, statement: Statement, timeout: float) -> None:
        """Return once the statement has finished or its session has, or after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not statement.finished and session.state not in FINISHED_STATES:
            left = deadline - time.monotonic()
            if not left > 0:
                return
            await self.wait_for_change(statement, left)

    def cancel(self, session: Session, statement_id: str) -> None:
        """Livy answers the same whether or not there was anything to cancel."""
        session.record_activity()
        statement = session.statements.get(int(statement_id)) if statement_id.isdigit() else None
        if statement is None or statement.finished or statement.state == "cancelling":
            return
        if statement.state == "waiting":
            statement.state = "cancelled"
            statement.completed = now_ms()
            statement.notify()
            self._dispatch(session)
            return
        statement.state = "cancelling"
        statement.notify()
        self._spawn(self._send(session, {"op": "cancel", "id": statement.id}))
        self._spawn(self._force_cancelled(statement))

    async def _force_cancelled(self, statement: Statement) -> None:
        await asyncio.sleep(self.config.cancel_force_after)
        if statement.state == "cancelling":
            statement.state = "cancelled"
            statement.completed = now_ms()
            statement.notify()

    async def complete(self, session: Session, code: str, kind: str | None, cursor: int) -> list[str]:
        if session.state not in RUNNING_STATES:
            raise errors.not_running(session.state)
        session.record_activity()
        ref = next(session.completion_refs)
        future = asyncio.get_running_loop().create_future()
        session.completions[ref] = future
        await self._send(
            session,
            {
                "op": "complete",
                "ref": ref,
                "code": code,
                "kind": kind or session.kind,
                "cursor": cursor,
            },
        )
        try:
            return await asyncio.wait_for(future, 10)
        except TimeoutError:
            session.completions.pop(ref, None)
            return []

    # -- lifetimes --------------------------------------------------------------------------

    async def _reap_forever(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            await self.reap()

    async def reap(self) -> None:
        """Apply heartbeat and idle timeouts, forget finished sessions after a while, and replace a
        spare taken once nothing has started or run for a while."""
        now = time.monotonic()
        self.spares.reap(working=any(s.state in ("starting", "busy") for s in self.sessions.values()))
        for session in list(self.sessions.values()):
            if session.state in FINISHED_STATES:
                finished = session.finished_at or now
                if now - finished > self.config.finished_session_ttl:
                    self.sessions.pop(session.id, None)
                continue
            if session.state not in RUNNING_STATES:
                continue
            heartbeat = session.request.heartbeatTimeoutInSecond or 0
            if heartbeat > 0 and now - session.last_access > heartbeat:
                session.log.add(f"no heartbeat for {heartbeat} s: deleting the session")
                self._spawn(self.delete(session))
                continue
            timeout = session.idle_timeout if session.idle_timeout is not None else self.config.idle_timeout
            busy = session.state == "busy"
            if timeout > 0 and now - session.last_activity > timeout:
                if busy and self.config.idle_skip_busy:
                    continue
                session.log.add(f"idle for more than {timeout:g} s: deleting the session")
                self._spawn(self.delete(session))

    async def shutdown(self) -> None:
        if self._reaper:
            self._reaper.cancel()
        await self.spares.shutdown()
        await asyncio.gather(*(self.delete(s) for s in list(self.sessions.values())), return_exceptions=True)
        if self._server:
            self._server.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._socket_path)

    def _spawn(self, coroutine) -> asyncio.Task:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task
