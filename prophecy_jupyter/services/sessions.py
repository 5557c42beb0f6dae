"""Remote sessions per notebook and fabric, and the runs sent to them.

The service opens or reuses one session per (notebook, fabric), submits runs from a pool so a
caller can always be interrupted, and polls every running statement from one scheduler with
adaptive backoff. It reports progress, cancels, notices sessions that end, keeps sessions
alive during long cells and closes sessions that sit idle.
"""

from __future__ import annotations

import contextlib
import getpass
import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field, replace
from typing import Any

from prophecy_jupyter.engines.base import (
    Engine,
    EngineError,
    RemoteSession,
    RunState,
    SessionGone,
    SessionSpec,
    SessionState,
    StatementLost,
    StatementStatus,
)
from prophecy_jupyter.results.model import Result
from prophecy_jupyter.results.transport import (
    DEFAULT_CHUNK_CHARS,
    chunk_code,
    fetch_code,
    parse_first_output,
)
from prophecy_jupyter.services.engines import EngineFactory
from prophecy_jupyter.services.fabrics import RESOURCE_FIELDS, Fabric, FabricError, FabricRegistry
from prophecy_jupyter.services.scheduler import PollPolicy, Scheduler

log = logging.getLogger(__name__)

Notify = Callable[[str], None]
CONFIGURE_FIELDS = frozenset({"conf", "size", "kind", *RESOURCE_FIELDS})


def _quiet(_message: str) -> None:
    """The default for callers that show nothing."""


def _session_name() -> str:
    """A name unique among the fabric's sessions, that tells whose session it is."""
    return f"prophecy-{getpass.getuser()}-{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class ServiceSettings:
    poll: PollPolicy = field(default_factory=PollPolicy)
    startup_timeout: float = 600.0
    health_interval: float = 2.0
    keepalive_interval: float = 300.0
    idle_close_after: float = 3600.0
    poll_failure_budget: float = 60.0
    workers: int = 8
    tick_interval: float = 0.5
    chunk_chars: int = DEFAULT_CHUNK_CHARS


class Run:
    """One piece of code sent to a session: queued → running → finished/failed/cancelled."""

    def __init__(self, session: ManagedSession, code: str, kind: str):
        self.id = uuid.uuid4().hex
        self.session = session
        self.code = code
        self.kind = kind
        self.state = RunState.QUEUED
        self.progress: float | None = None
        self.result: Result | None = None
        self.statement_id: str | None = None
        self.submitted_at = time.monotonic()
        self.finished_at: float | None = None
        self.server_ms: tuple[int, int] = (0, 0)
        self.polls = 0
        self.cancel_requested = False
        self.failing_since: float | None = None
        """When polls of this run started failing (None while they succeed)."""
        self._done = threading.Event()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    @property
    def elapsed(self) -> float:
        return (self.finished_at or time.monotonic()) - self.submitted_at

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def describe(self) -> dict[str, Any]:
        return {
            "run": self.id,
            "statement": self.statement_id,
            "state": self.state,
            "progress": self.progress,
            "elapsed": round(self.elapsed, 3),
        }


@dataclass(eq=False)
class ManagedSession:
    """The notebook's session on one fabric."""

    notebook_id: str
    fabric: Fabric
    engine: Engine
    spec: SessionSpec
    remote: RemoteSession | None = None
    last_used: float = field(default_factory=time.monotonic)
    next_health: float = 0.0
    next_keepalive: float = 0.0
    active: set[Run] = field(default_factory=set)
    lock: threading.RLock = field(default_factory=threading.RLock)

    @property
    def live(self) -> bool:
        return self.remote is not None and self.remote.state != SessionState.ENDED


def wait_for(run: Run) -> Run:
    """The plain waiter: block until the run is done."""
    run.wait()
    return run


class SessionService:
    """Sessions and runs for every notebook of this process (or, later, of a Jupyter server)."""

    def __init__(
        self, registry: FabricRegistry, engines: EngineFactory, settings: ServiceSettings | None = None
    ):
        self.registry = registry
        self.engines = engines
        self.settings = settings or ServiceSettings()
        self._sessions: dict[tuple[str, str], ManagedSession] = {}
        self._overrides: dict[tuple[str, str], dict[str, Any]] = {}
        self._engines: dict[str, Engine] = {}
        self._lock = threading.RLock()
        self._scheduler = Scheduler(self.settings.workers, self._housekeeping, self.settings.tick_interval)

    # -- sessions ---------------------------------------------------------------------------

    def _engine(self, fabric: Fabric) -> Engine:
        with self._lock:
            engine = self._engines.get(fabric.name)
            if engine is None:
                engine = self._engines[fabric.name] = self.engines.engine(fabric)
            return engine

    def spec_for(self, notebook_id: str, fabric: Fabric) -> SessionSpec:
        """Fabric defaults, then the job size, then the notebook's own settings."""
        settings = self._overrides.get((notebook_id, fabric.name), {})
        conf = dict(fabric.conf)
        resources: dict[str, Any] = {}
        size = settings.get("size")
        if size is not None:
            if size not in fabric.job_sizes:
                known = ", ".join(fabric.job_sizes) or "none"
                raise FabricError(f"Fabric '{fabric.name}' has no job size '{size}' (sizes: {known}).")
            sized = fabric.job_sizes[size]
            conf.update(sized.get("conf", {}))
            resources.update({k: v for k, v in sized.items() if k != "conf"})
        conf.update(settings.get("conf", {}))
        resources.update({k: settings[k] for k in RESOURCE_FIELDS if k in settings})
        return SessionSpec(
            kind=settings.get("kind", "pyspark"), name=_session_name(), conf=conf, resources=resources
        )

    def session(self, notebook_id: str, fabric_name: str, notify: Notify = _quiet) -> ManagedSession:
        """The notebook's live session on the fabric, opened and waited for if needed.

        The work happens on the pool, so an interrupted caller leaves a session that finishes
        starting in the background and is reused by the next call.
        """
        managed = self._managed(notebook_id, fabric_name)
        if managed.live:
            return managed
        future = self._scheduler.call_soon(self._ensure_started, managed, notify)
        while True:
            try:
                future.result(timeout=0.2)
                return managed
            except FutureTimeout:
                continue

    def _managed(self, notebook_id: str, fabric_name: str) -> ManagedSession:
        fabric = self.registry.get(fabric_name)
        key = (notebook_id, fabric.name)
        with self._lock:
            managed = self._sessions.get(key)
            if managed is None:
                spec = self.spec_for(notebook_id, fabric)
                managed = ManagedSession(notebook_id, fabric, self._engine(fabric), spec)
                self._sessions[key] = managed
            return managed

    def start_in_background(self, notebook_id: str, fabric_name: str) -> None:
        """Start the notebook's session without waiting, so the first cell finds it ready.

        A failure is only logged here; the next cell that needs the session tries again and
        reports it.
        """
        managed = self._managed(notebook_id, fabric_name)
        if not managed.live:
            self._scheduler.call_soon(self._ensure_started, managed, _quiet)

    def _ensure_started(self, managed: ManagedSession, notify: Notify) -> None:
        with managed.lock:
            if managed.live:
                return
            if managed.remote is not None:
                notify(
                    f"The session on fabric '{managed.fabric.name}' had ended "
                    f"({managed.remote.raw_state}); starting a new one. Variables from earlier "
                    "cells are gone."
                )
                managed.remote = None
            managed.spec = replace(managed.spec, name=_session_name())
            remote = managed.engine.open_session(managed.spec)
            for note in remote.notes:
                notify(note)
            managed.remote = self._wait_until_ready(managed, remote, notify)
            managed.last_used = time.monotonic()

    def _wait_until_ready(
        self, managed: ManagedSession, remote: RemoteSession, notify: Notify
    ) -> RemoteSession:
        started = time.monotonic()
        next_notice = started + 5.0
        while remote.state == SessionState.STARTING:
            waited = time.monotonic() - started
            if waited > self.settings.startup_timeout:
                with contextlib.suppress(EngineError):
                    managed.engine.close_session(remote.id)
                raise EngineError(
                    f"The session on fabric '{managed.fabric.name}' did not start within "
                    f"{self.settings.startup_timeout:.0f} s; it was stopped. See `%fabric logs`."
                )
            if time.monotonic() >= next_notice:
                notify(f"Still starting the session on fabric '{managed.fabric.name}' ({waited:.0f} s)...")
                next_notice += 15.0
            if managed.engine.supports_long_poll:
                remote = managed.engine.session(remote.id, wait=1.0)
            else:
                time.sleep(min(0.25, max(0.02, 0.05 * waited)))
                remote = managed.engine.session(remote.id)
        if remote.state == SessionState.ENDED:
            tail = self._log_tail(managed.engine, remote.id)
            raise EngineError(
                f"The session on fabric '{managed.fabric.name}' failed to start ({remote.raw_state})."
                + (f" Its log ends with:\n{tail}" if tail else "")
            )
        return remote

    @staticmethod
    def _log_tail(engine: Engine, session_id: str, lines: int = 15) -> str:
        try:
            return "\n".join(engine.logs(session_id, size=lines))
        except EngineError:
            return ""

    def configure(
        self, notebook_id: str, fabric_name: str, settings: dict[str, Any], notify: Notify = _quiet
    ) -> bool:
        """Set the notebook's session settings; restart a live session that differs. True if restarted."""
        unknown = set(settings) - CONFIGURE_FIELDS
        if unknown:
            raise FabricError(
                f"Unknown session setting(s) {sorted(unknown)}; use {sorted(CONFIGURE_FIELDS)}."
            )
        fabric = self.registry.get(fabric_name)
        key = (notebook_id, fabric.name)
        previous = self._overrides.get(key)
        self._overrides[key] = dict(settings)
        try:
            spec = self.spec_for(notebook_id, fabric)
        except FabricError:
            self._overrides[key] = previous if previous is not None else {}
            raise
        with self._lock:
            managed = self._sessions.get(key)
        if managed is None:
            notify(f"Session settings saved; they apply when the session on '{fabric.name}' starts.")
            return False
        same = (spec.kind, spec.conf, spec.resources) == (
            managed.spec.kind,
            managed.spec.conf,
            managed.spec.resources,
        )
        if same:
            notify(f"The session on '{fabric.name}' already has these settings.")
            return False
        managed.spec = spec
        if not managed.live:
            notify(f"Session settings saved; they apply when the session on '{fabric.name}' starts.")
            return False
        notify(
            f"Restarting the session on '{fabric.name}' to apply the new settings; variables "
            "from earlier cells are gone."
        )
        self._close(managed)
        self.session(notebook_id, fabric.name, notify)
        return True

    # -- runs -------------------------------------------------------------------------------

    def submit(
        self, notebook_id: str, fabric_name: str, code: str, kind: str = "pyspark", notify: Notify = _quiet
    ) -> Run:
        """Send code to the notebook's session; returns at once with the queued run."""
        managed = self.session(notebook_id, fabric_name, notify)
        run = Run(managed, code, kind)
        with managed.lock:
            managed.active.add(run)
            managed.last_used = time.monotonic()
            if not managed.next_keepalive:
                managed.next_keepalive = time.monotonic() + self.settings.keepalive_interval
        self._scheduler.call_soon(self._send, run)
        return run

    def _send(self, run: Run) -> None:
        managed = run.session
        if run.cancel_requested:
            cancelled = Result.of_error("Cancelled", "The run was cancelled before it started.")
            self._finish(run, RunState.CANCELLED, cancelled)
            return
        remote = managed.remote
        if remote is None:
            self._finish(run, RunState.FAILED, Result.of_error("SessionGone", "The session is not open."))
            return
        try:
            status = managed.engine.submit(remote.id, run.code, run.kind, run.id)
        except EngineError as exc:
            self._fail(run, exc)
            return
        run.statement_id = status.id
        if self._apply(run, status):
            return
        if run.cancel_requested:
            self._cancel_remote(run)
        self._schedule_poll(run, first=True)

    def _schedule_poll(self, run: Run, first: bool = False) -> None:
        policy = self.settings.poll
        if run.session.engine.supports_long_poll:
            self._scheduler.call_soon(self._poll, run)
            return
        delay = policy.first_delay if first else policy.next_delay(run.elapsed)
        self._scheduler.call_at(time.monotonic() + delay, self._poll, run)

    def _poll(self, run: Run) -> None:
        managed = run.session
        remote = managed.remote
        if run.done or remote is None:
            return
        engine = managed.engine
        wait = self.settings.poll.long_poll_wait if engine.supports_long_poll else 0.0
        try:
            status = engine.poll(remote.id, run.statement_id, wait=wait)
        except (SessionGone, StatementLost) as exc:
            self._fail(run, exc)
            return
        except EngineError as exc:
            now = time.monotonic()
            run.failing_since = run.failing_since or now
            if now - run.failing_since > self.settings.poll_failure_budget:
                self._fail(
                    run,
                    EngineError(
                        f"Lost contact with fabric '{managed.fabric.name}' for "
                        f"{self.settings.poll_failure_budget:.0f} s while the statement ran ({exc}). It "
                        "may still be running there; check with `%fabric status`."
                    ),
                )
                return
            self._scheduler.call_at(now + min(5.0, 0.5 + (now - run.failing_since) / 4), self._poll, run)
            return
        run.failing_since = None
        run.polls += 1
        if not self._apply(run, status):
            self._schedule_poll(run)

    def _apply(self, run: Run, status: StatementStatus) -> bool:
        """Take a status in; True when the run is over."""
        if status.progress is not None:
            run.progress = status.progress
        run.server_ms = (status.started_ms, status.completed_ms)
        if status.done:
            self._finish(run, status.state, status.result)
            return True
        run.state = status.state
        return False

    def _fail(self, run: Run, exc: EngineError) -> None:
        if isinstance(exc, SessionGone) and run.session.remote is not None:
            run.session.remote = replace(run.session.remote, state=SessionState.ENDED, raw_state="gone")
        self._finish(run, RunState.FAILED, Result.of_error(type(exc).__name__, str(exc)))

    def _finish(self, run: Run, state: str, result: Result | None) -> None:
        if run.done:
            return
        run.state = state
        run.result = result
        run.finished_at = time.monotonic()
        with run.session.lock:
            run.session.active.discard(run)
            run.session.last_used = time.monotonic()
        run._done.set()

    def cancel(self, run: Run) -> None:
        """Ask the fabric to cancel the run (through the statement's cancel endpoint)."""
        run.cancel_requested = True
        if run.statement_id is not None and not run.done:
            self._scheduler.call_soon(self._cancel_remote, run)

    def _cancel_remote(self, run: Run) -> None:
        remote = run.session.remote
        if remote is None:
            return
        try:
            run.session.engine.cancel(remote.id, run.statement_id)
        except EngineError as exc:
            log.warning("cancel of run %s failed: %s", run.id, exc)

    def run(
        self,
        notebook_id: str,
        fabric_name: str,
        code: str,
        kind: str = "pyspark",
        waiter: Callable[[Run], Run] = wait_for,
        notify: Notify = _quiet,
    ) -> Run:
        """Submit and wait (through ``waiter``, which may show progress or cancel)."""
        return waiter(self.submit(notebook_id, fabric_name, code, kind, notify))

    def fetch_table(
        self,
        notebook_id: str,
        fabric_name: str,
        source_expression: str,
        limit: int,
        waiter: Callable[[Run], Run] = wait_for,
        notify: Notify = _quiet,
        prefer_arrow: bool = True,
    ) -> Result:
        """A remote DataFrame as a typed pandas table (at most ``limit`` rows; < 0 for all)."""
        key = uuid.uuid4().hex
        code = fetch_code(source_expression, limit, key, prefer_arrow, self.settings.chunk_chars)
        first = self.run(notebook_id, fabric_name, code, "pyspark", waiter, notify)
        if first.result is None or not first.result.ok:
            return first.result or Result.of_error("Cancelled", "The run was cancelled.")
        from prophecy_jupyter.results.frames import TableAssembler  # pandas, on first use

        header, chunk = parse_first_output(first.result.text)
        del first
        assembler = TableAssembler(header)
        assembler.add(chunk)
        del chunk
        for index in range(1, header.chunks):
            code = chunk_code(key, index, last=index == header.chunks - 1)
            part = self.run(notebook_id, fabric_name, code, "pyspark", waiter, notify)
            if part.result is None or not part.result.ok:
                return part.result or Result.of_error("Cancelled", "The run was cancelled.")
            assembler.add(part.result.text)
            del part
        return Result.of_table(assembler.frame(), truncated=header.truncated, row_limit=limit)

    # -- housekeeping -----------------------------------------------------------------------

    def _housekeeping(self) -> None:
        now = time.monotonic()
        with self._lock:
            sessions = list(self._sessions.values())
        for managed in sessions:
            if not managed.live:
                continue
            if managed.active:
                if now >= managed.next_health:
                    managed.next_health = now + self.settings.health_interval
                    self._scheduler.call_soon(self._check_health, managed)
                if now >= managed.next_keepalive:
                    managed.next_keepalive = now + self.settings.keepalive_interval
                    self._scheduler.call_soon(self._keepalive, managed)
            elif now - managed.last_used > self.settings.idle_close_after:
                log.info("closing idle session on %s", managed.fabric.name)
                self._scheduler.call_soon(self._close, managed)

    def _check_health(self, managed: ManagedSession) -> None:
        try:
            remote = managed.engine.session(managed.remote.id)
        except SessionGone as exc:
            self._end(managed, exc)
            return
        except EngineError:
            return
        if remote.state == SessionState.ENDED:
            self._end(
                managed,
                SessionGone(
                    f"The session on fabric '{managed.fabric.name}' ended ({remote.raw_state}) while a "
                    "statement was running; its state is lost. The next cell starts a new session."
                ),
            )

    def _end(self, managed: ManagedSession, exc: SessionGone) -> None:
        if managed.remote is not None:
            managed.remote = replace(managed.remote, state=SessionState.ENDED)
        for run in list(managed.active):
            self._finish(run, RunState.FAILED, Result.of_error("SessionGone", str(exc)))

    def _keepalive(self, managed: ManagedSession) -> None:
        with contextlib.suppress(EngineError):
            managed.engine.keepalive(managed.remote.id)

    def _close(self, managed: ManagedSession) -> None:
        for run in list(managed.active):
            self._finish(run, RunState.CANCELLED, Result.of_error("Cancelled", "The session was closed."))
        remote, managed.remote = managed.remote, None
        if remote is not None and remote.state != SessionState.ENDED:
            with contextlib.suppress(EngineError):
                managed.engine.close_session(remote.id)

    # -- inspection and shutdown ------------------------------------------------------------

    def sessions_of(self, notebook_id: str) -> list[ManagedSession]:
        with self._lock:
            return [m for (nb, _), m in self._sessions.items() if nb == notebook_id]

    def status(self, notebook_id: str) -> list[dict[str, Any]]:
        """The notebook's sessions as the fabrics see them now."""
        rows = []
        for managed in self.sessions_of(notebook_id):
            row: dict[str, Any] = {"fabric": managed.fabric.name, "session": None, "state": "not started"}
            if managed.remote is not None:
                with contextlib.suppress(EngineError):
                    managed.remote = managed.engine.session(managed.remote.id)
                row.update(
                    session=managed.remote.id, state=managed.remote.raw_state, app_id=managed.remote.app_id
                )
            row["runs"] = [r.describe() for r in managed.active]
            rows.append(row)
        return rows

    def logs(self, notebook_id: str, fabric_name: str, size: int = 100) -> list[str]:
        with self._lock:
            managed = self._sessions.get((notebook_id, fabric_name))
        if managed is None or managed.remote is None:
            return []
        return managed.engine.logs(managed.remote.id, size)

    def close(self, notebook_id: str, fabric_name: str | None = None) -> int:
        """Close the notebook's sessions (on one fabric, or all); returns how many."""
        with self._lock:
            keys = [k for k in self._sessions if k[0] == notebook_id and fabric_name in (None, k[1])]
            closing = [self._sessions.pop(k) for k in keys]
        for managed in closing:
            self._close(managed)
        return len(closing)

    def shutdown(self) -> None:
        """Close every session, stop polling and stop the local gateway."""
        with self._lock:
            closing = list(self._sessions.values())
            self._sessions.clear()
        for managed in closing:
            self._close(managed)
        self._scheduler.stop()
        for engine in self._engines.values():
            engine.close()
        self.engines.local_gateway.stop()
