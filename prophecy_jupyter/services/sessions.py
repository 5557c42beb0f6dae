"""Remote sessions per user, notebook and fabric, and the runs sent to them.

The service opens or reuses one session per (user, notebook, fabric), submits runs from a pool
so a caller can always be interrupted, and polls every running statement from one scheduler with
adaptive backoff. It reports progress, cancels, notices sessions that end, keeps sessions alive
during long cells, closes sessions that sit idle, limits sessions per user, and (with store
records) finds its remote sessions again after a restart.
"""

from __future__ import annotations

import contextlib
import datetime
import getpass
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from prophecy_jupyter.engines.base import (
    Engine,
    PollPolicy,
    RemoteSession,
    RunsSql,
    RunState,
    SessionSpec,
    SessionState,
    StatementStatus,
)
from prophecy_jupyter.errors import EngineError, Invalid, LimitReached, NotFound, SessionGone, StatementLost
from prophecy_jupyter.results.model import Result, ResultKind
from prophecy_jupyter.results.transport import (
    DEFAULT_CHUNK_CHARS,
    TableAssembler,
    TablePayload,
    chunk_code,
    fetch_code,
    parse_first_output,
    sql_source,
)
from prophecy_jupyter.services.engines import EngineFactory
from prophecy_jupyter.services.fabrics import RESOURCE_FIELDS, Fabric
from prophecy_jupyter.services.runs import Run, StatementRun, TableRun
from prophecy_jupyter.services.scheduler import Scheduler
from prophecy_jupyter.services.session_records import ENDED, LIVE, NoRecords, SessionRecords
from prophecy_jupyter.sql_parameters import SqlParameter

log = logging.getLogger(__name__)

Notify = Callable[[str], None]
Waiter = Callable[[Run], Run]


class SessionSettings(BaseModel):
    """What ``%%configure`` may set for a notebook's session (named as Livy's session fields)."""

    model_config = ConfigDict(extra="forbid")

    conf: dict[str, str] = Field(default_factory=dict)
    size: str | None = None
    kind: Literal["pyspark", "python", "sql", "spark", "scala", "sparkr", "r"] | None = None
    driverMemory: str | None = None
    driverCores: int | None = Field(default=None, ge=1)
    executorMemory: str | None = None
    executorCores: int | None = Field(default=None, ge=1)
    numExecutors: int | None = Field(default=None, ge=1)
    queue: str | None = None
    jars: list[str] | None = None
    pyFiles: list[str] | None = None
    files: list[str] | None = None
    archives: list[str] | None = None

    @field_validator("conf", mode="before")
    @classmethod
    def _conf_values(cls, conf: Any) -> Any:
        """Spark settings are text; numbers and true/false are taken as their text."""
        if not isinstance(conf, dict):
            return conf
        for key, value in conf.items():
            if not isinstance(value, (str, int, float, bool)):
                raise ValueError(f"{key}: a Spark setting is text, a number or true/false")
        return {
            key: str(value).lower() if isinstance(value, bool) else str(value) for key, value in conf.items()
        }


def session_settings(settings: Any) -> dict[str, Any]:
    """``%%configure`` settings checked field by field; Invalid names the first wrong one."""
    if not isinstance(settings, dict):
        raise Invalid('Session settings are a JSON object, e.g. {"conf": {...}, "size": "M"}.', "settings")
    try:
        checked = SessionSettings.model_validate(settings)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = f"not a session setting; use {', '.join(SessionSettings.model_fields)}"
        raise Invalid(f"Session setting {where}: {message}", f"settings.{where}") from None
    return checked.model_dump(exclude_none=True)


FABRIC_CACHE_SECONDS = 5.0


def table_result(run: Run) -> Result:
    """A finished run's result, its table data (if any) taken and made a typed DataFrame."""
    if run.payload is None:
        return run.result or Result.of_error("Cancelled", "The run was cancelled.")
    from prophecy_jupyter.results.frames import frame_from_payload  # pandas, on first use

    payload, run.payload = run.payload, None
    return Result.of_table(
        frame_from_payload(payload), truncated=payload.header.truncated, row_limit=payload.limit
    )


def _quiet(_message: str) -> None:
    """The default for callers that show nothing."""


def _session_name() -> str:
    """A name unique among the fabric's sessions, that tells whose session it is."""
    return f"prophecy-{getpass.getuser()}-{uuid.uuid4().hex[:8]}"


def wait_for(run: Run) -> Run:
    """The plain waiter: block until the run is done."""
    run.wait()
    return run


class FabricSource(Protocol):
    """Where the service finds fabrics and the user's secret for them (the fabric service)."""

    def get(self, user: str, ref: str) -> Fabric: ...

    def secret(self, user: str, fabric: Fabric) -> str | None: ...

    def secret_set_at(self, user: str, fabric: Fabric) -> datetime.datetime | None: ...


@dataclass(frozen=True)
class ServiceSettings:
    poll: PollPolicy = field(default_factory=PollPolicy)
    startup_timeout: float = 600.0
    health_interval: float = 2.0
    keepalive_interval: float = 300.0
    idle_close_after: float = 3600.0
    poll_failure_budget: float = 60.0
    max_sessions_per_user: int = 10
    """Live sessions a user may have at once (0: no limit)."""
    finished_runs_kept: float = 600.0
    workers: int = 64
    """Threads that send and poll statements (created as needed; a long poll holds one)."""
    tick_interval: float = 0.5
    chunk_chars: int = DEFAULT_CHUNK_CHARS
    max_table_rows: int | None = None
    """Rows a table result keeps at most, whatever its ``limit`` (None: no cap, as in a kernel)."""
    max_buffered_bytes: int | None = None
    """Table results a user may have waiting in this process (None: no cap)."""
    fetched_tables_kept: float = 60.0
    """Seconds a table result stays once fetched (a retried fetch finds it)."""
    proxy_users: Mapping[str, str] | None = None
    """On Livy fabrics, sessions run as the user (``proxyUser``), mapped through this (a user
    not in it runs as their own name); None: as the fabric's credential says."""


@dataclass(eq=False)
class ManagedSession:
    """A user's notebook's session on one fabric."""

    user: str
    notebook: str
    fabric: Fabric
    engine: Engine
    spec: SessionSpec
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    remote: RemoteSession | None = None
    ended_reason: str | None = None
    last_used: float = field(default_factory=time.monotonic)
    next_health: float = 0.0
    next_keepalive: float = 0.0
    active: set[Run] = field(default_factory=set)
    lock: threading.RLock = field(default_factory=threading.RLock)

    @property
    def live(self) -> bool:
        return self.remote is not None and self.remote.state != SessionState.ENDED

    @property
    def state(self) -> str:
        if self.remote is None:
            return "ended" if self.ended_reason else "not started"
        return self.remote.raw_state if self.live else "ended"

    def describe(self) -> dict[str, Any]:
        remote = self.remote
        return {
            "id": self.id,
            "notebook": self.notebook,
            "fabric": self.fabric.ref,
            "state": self.state,
            "remote_id": remote.id if remote else None,
            "app_id": remote.app_id if remote else None,
            "ended_reason": self.ended_reason,
            "runs": [run.describe() for run in list(self.active)],
        }


class SessionService:
    """Sessions and runs for every user and notebook of this process or Jupyter server."""

    def __init__(
        self,
        fabrics: FabricSource,
        engines: EngineFactory,
        settings: ServiceSettings | None = None,
        records: SessionRecords | None = None,
    ):
        self.fabrics = fabrics
        self.engines = engines
        self.settings = settings or ServiceSettings()
        self.records = records or NoRecords()
        self._sessions: dict[tuple[str, str, str], ManagedSession] = {}
        self._overrides: dict[tuple[str, str, str], dict[str, Any]] = {}
        self._engines: dict[tuple[str, str], Engine] = {}
        self._runs: dict[str, Run] = {}
        self._resolved: dict[tuple[str, str], tuple[float, Fabric]] = {}
        self._stamps: dict[tuple[str, str], tuple[float, str | None]] = {}
        self._lock = threading.RLock()
        self._scheduler = Scheduler(self.settings.workers, self._housekeeping, self.settings.tick_interval)

    # -- sessions ---------------------------------------------------------------------------

    def engine_for(self, user: str, fabric: Fabric) -> Engine:
        """The engine the user's cells on the fabric use (built with their own secret)."""
        return self._engine(user, fabric)

    def _engine(self, user: str, fabric: Fabric) -> Engine:
        """One engine per user, fabric version and version of the user's secret for it."""
        key = (user, fabric.version, self._secret_stamp(user, fabric))
        with self._lock:
            engine = self._engines.get(key)
        if engine is None:
            secret = self.fabrics.secret(user, fabric)
            if fabric.secret_needed and secret is None:
                raise EngineError(
                    f"Fabric '{fabric.ref}' needs your {fabric.secret_needed}: set it with "
                    f"`jupyter prophecy credentials set {fabric.ref}` or in the Prophecy sidebar."
                )
            proxy_users = self.settings.proxy_users
            proxy_user = None if proxy_users is None else proxy_users.get(user, user)
            engine = self.engines.engine(fabric, secret, proxy_user)
            with self._lock:
                engine = self._engines.setdefault(key, engine)
        return engine

    def _secret_stamp(self, user: str, fabric: Fabric) -> str | None:
        """When the user last set their secret for the fabric (looked up at most every few seconds)."""
        if not fabric.secret_needed:
            return None
        now = time.monotonic()
        with self._lock:
            cached = self._stamps.get((user, fabric.id))
        if cached and now - cached[0] < FABRIC_CACHE_SECONDS:
            return cached[1]
        set_at = self.fabrics.secret_set_at(user, fabric)
        stamp = set_at.isoformat() if set_at else None
        with self._lock:
            self._stamps[(user, fabric.id)] = (now, stamp)
        return stamp

    def secret_changed(self, _scope: str) -> None:
        """A credential changed in this process: look secrets up again before the next run."""
        with self._lock:
            self._stamps.clear()

    def fabric(self, user: str, ref: str) -> Fabric:
        """The fabric a user means, looked up in the store at most every few seconds (each cell
        asks; membership and settings changes apply within ``FABRIC_CACHE_SECONDS``)."""
        now = time.monotonic()
        with self._lock:
            cached = self._resolved.get((user, ref))
        if cached and now - cached[0] < FABRIC_CACHE_SECONDS:
            return cached[1]
        fabric = self.fabrics.get(user, ref)
        with self._lock:
            self._resolved[(user, ref)] = (now, fabric)
        return fabric

    def spec_for(self, user: str, notebook: str, fabric: Fabric) -> SessionSpec:
        """Fabric defaults, then the job size, then the notebook's own settings."""
        settings = self._overrides.get((user, notebook, fabric.id), {})
        conf = dict(fabric.conf)
        resources: dict[str, Any] = {}
        size = settings.get("size")
        if size is not None:
            if size not in fabric.job_sizes:
                known = ", ".join(fabric.job_sizes) or "none"
                raise Invalid(f"Fabric '{fabric.ref}' has no job size '{size}' (sizes: {known}).", "size")
            sized = fabric.job_sizes[size]
            conf.update(sized.get("conf", {}))
            resources.update({k: v for k, v in sized.items() if k != "conf"})
        conf.update(settings.get("conf", {}))
        resources.update({k: settings[k] for k in RESOURCE_FIELDS if k in settings})
        return SessionSpec(
            kind=settings.get("kind", "pyspark"), name=_session_name(), conf=conf, resources=resources
        )

    def managed(self, user: str, notebook: str, fabric_ref: str) -> ManagedSession:
        """The notebook's session record on the fabric (created, not started, if new)."""
        fabric = self.fabric(user, fabric_ref)
        key = (user, notebook, fabric.id)
        engine = self._engine(user, fabric)
        with self._lock:
            managed = self._sessions.get(key)
            if managed is not None and managed.engine is not engine:
                managed.fabric, managed.engine = fabric, engine
            if managed is None:
                spec = self.spec_for(user, notebook, fabric)
                managed = ManagedSession(user, notebook, fabric, engine, spec)
                self._sessions[key] = managed
            return managed

    def session(self, user: str, notebook: str, fabric_ref: str, notify: Notify = _quiet) -> ManagedSession:
        """The notebook's live session on the fabric, opened and waited for if needed.

        The work happens on the pool, so an interrupted caller leaves a session that finishes
        starting in the background and is reused by the next call.
        """
        managed = self.managed(user, notebook, fabric_ref)
        if managed.live:
            return managed
        self._check_limit(managed)
        future = self._scheduler.call_soon(self._ensure_started, managed, notify)
        while True:
            try:
                future.result(timeout=0.2)
                return managed
            except FutureTimeout:
                continue

    def start_in_background(self, user: str, notebook: str, fabric_ref: str) -> ManagedSession:
        """Start the notebook's session without waiting, so the first cell finds it ready.

        A failure is only logged here; the next cell that needs the session tries again and
        reports it.
        """
        managed = self.managed(user, notebook, fabric_ref)
        if not managed.live:
            self._check_limit(managed)
            self._scheduler.call_soon(self._ensure_started, managed, _quiet)
        return managed

    def _check_limit(self, starting: ManagedSession) -> None:
        limit = self.settings.max_sessions_per_user
        if not limit:
            return
        with self._lock:
            live = [
                m for m in self._sessions.values() if m.user == starting.user and m.live and m is not starting
            ]
        if len(live) >= limit:
            raise LimitReached(
                f"You have {len(live)} live sessions, the most allowed; stop one first "
                f"(`%fabric detach` in its notebook, or in the sidebar)."
            )

    def _ensure_started(self, managed: ManagedSession, notify: Notify) -> None:
        with managed.lock:
            if managed.live:
                return
            if managed.remote is not None or managed.ended_reason:
                why = (managed.ended_reason or (managed.remote.raw_state if managed.remote else "")).rstrip(
                    "."
                )
                notify(
                    f"The session on fabric '{managed.fabric.ref}' had ended{f' ({why})' if why else ''}; "
                    "starting a new one. Variables from earlier cells are gone."
                )
                managed.remote, managed.ended_reason = None, None
            managed.spec = replace(managed.spec, name=_session_name())
            managed.engine.prepare(notify, self.settings.startup_timeout)
            remote = managed.engine.open_session(managed.spec)
            for note in remote.notes:
                notify(note)
            managed.remote = self._wait_until_ready(managed, remote, notify)
            managed.last_used = time.monotonic()
            self.records.opened(managed)

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
                    f"The session on fabric '{managed.fabric.ref}' did not start within "
                    f"{self.settings.startup_timeout:.0f} s; it was stopped. See `%fabric logs`."
                )
            if time.monotonic() >= next_notice:
                notify(f"Still starting the session on fabric '{managed.fabric.ref}' ({waited:.0f} s)...")
                next_notice += 15.0
            if managed.engine.supports_long_poll:
                remote = managed.engine.session(remote.id, wait=1.0)
            else:
                time.sleep(min(0.25, max(0.02, 0.05 * waited)))
                remote = managed.engine.session(remote.id)
        if remote.state == SessionState.ENDED:
            tail = self._log_tail(managed.engine, remote.id)
            raise EngineError(
                f"The session on fabric '{managed.fabric.ref}' failed to start ({remote.raw_state})."
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
        self, user: str, notebook: str, fabric_ref: str, settings: dict[str, Any], notify: Notify = _quiet
    ) -> bool:
        """Set the notebook's session settings; restart a live session that differs. True if restarted."""
        settings = session_settings(settings)
        fabric = self.fabric(user, fabric_ref)
        key = (user, notebook, fabric.id)
        previous = self._overrides.get(key)
        self._overrides[key] = dict(settings)
        try:
            spec = self.spec_for(user, notebook, fabric)
        except BaseException:  # a setting that does not fit the fabric is not kept
            self._overrides[key] = previous if previous is not None else {}
            raise
        with self._lock:
            managed = self._sessions.get(key)
        if managed is None:
            notify(f"Session settings saved; they apply when the session on '{fabric.ref}' starts.")
            return False
        same = (spec.kind, spec.conf, spec.resources) == (
            managed.spec.kind,
            managed.spec.conf,
            managed.spec.resources,
        )
        if same:
            notify(f"The session on '{fabric.ref}' already has these settings.")
            return False
        managed.spec = spec
        if not managed.live:
            notify(f"Session settings saved; they apply when the session on '{fabric.ref}' starts.")
            return False
        notify(
            f"Restarting the session on '{fabric.ref}' to apply the new settings; variables from "
            "earlier cells are gone."
        )
        self.restart(managed, notify)
        return True

    def restart(self, managed: ManagedSession, notify: Notify = _quiet) -> ManagedSession:
        """Stop the session and start a new one for the same notebook and fabric."""
        self._close(managed, "restarted")
        return self.session(managed.user, managed.notebook, managed.fabric.ref, notify)

    # -- runs -------------------------------------------------------------------------------

    def submit(
        self,
        user: str,
        notebook: str,
        fabric_ref: str,
        code: str,
        language: str = "pyspark",
        notify: Notify = _quiet,
    ) -> StatementRun:
        """Send code to the notebook's session; returns at once with the queued run."""
        managed = self.session(user, notebook, fabric_ref, notify)
        return self._submit(managed, code, language)

    def _submit(self, managed: ManagedSession, code: str, language: str) -> StatementRun:
        run = StatementRun(managed, code, language)
        self._track(run)
        self._scheduler.call_soon(self._send, run)
        return run

    def _track(self, run: Run) -> None:
        managed = run.session
        with managed.lock:
            managed.active.add(run)
            managed.last_used = time.monotonic()
            if not managed.next_keepalive:
                managed.next_keepalive = time.monotonic() + self.settings.keepalive_interval
        with self._lock:
            self._runs[run.id] = run
        self.records.run_started(run)

    def _send(self, run: StatementRun) -> None:
        managed = run.session
        if run.cancel_requested:
            self._finish(
                run,
                RunState.CANCELLED,
                Result.of_error("Cancelled", "The run was cancelled before it started."),
            )
            return
        remote = managed.remote
        if remote is None:
            self._finish(run, RunState.FAILED, Result.of_error("SessionGone", "The session is not open."))
            return
        run.sent_at = time.monotonic()
        try:
            if run.query is not None:
                status = managed.engine.submit_query(run.code, *run.query)
            else:
                status = managed.engine.submit(remote.id, run.code, run.language, run.id)
        except SessionGone as exc:
            self._reopen_and_send(run, exc)
            return
        except EngineError as exc:
            self._fail(run, exc)
            return
        run.statement_id = status.id
        if self._apply(run, status):
            return
        if run.cancel_requested:
            self._cancel_remote(run)
        self._schedule_poll(run, first=True)

    def _reopen_and_send(self, run: StatementRun, gone: SessionGone) -> None:
        """The fabric lost the session before it took the statement (evicted, cluster restarted):
        open a new session and send the statement there, once, telling the user state was lost."""
        managed = run.session
        self._mark_ended(managed, str(gone))
        if run.reopened:
            self._fail(run, gone)
            return
        run.reopened = True
        run.notes.append(f"{gone} This cell runs in a new one.")
        with managed.lock:
            if not managed.live:
                managed.remote, managed.ended_reason = None, None
        try:
            self._ensure_started(run.session, run.notes.append)
        except EngineError as exc:
            self._fail(run, exc)
            return
        self._send(run)

    def _schedule_poll(self, run: StatementRun, first: bool = False) -> None:
        if run.session.engine.supports_long_poll:
            self._scheduler.call_soon(self._poll, run)
            return
        policy = run.session.engine.poll_policy or self.settings.poll
        delay = policy.first_delay if first else policy.next_delay(run.elapsed)
        self._scheduler.call_at(time.monotonic() + delay, self._poll, run)

    def _poll(self, run: StatementRun) -> None:
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
                        f"Lost contact with fabric '{managed.fabric.ref}' for "
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

    def _apply(self, run: StatementRun, status: StatementStatus) -> bool:
        """Take a status in; True when the run is over."""
        if status.progress is not None:
            run.statement_progress = status.progress
        run.server_ms = (status.started_ms, status.completed_ms)
        if status.payload is not None:
            run.payload = status.payload
        if status.done:
            run.seen_done_at = time.monotonic()
            self._finish(run, status.state, status.result)
            return True
        run.state = status.state
        return False

    def _fail(self, run: Run, exc: EngineError) -> None:
        if isinstance(exc, SessionGone):
            self._mark_ended(run.session, str(exc))
        self._finish(run, RunState.FAILED, Result.of_error(type(exc).__name__, str(exc)))

    def _finish(self, run: Run, state: str, result: Result | None) -> None:
        if not run.finish(state, result):
            return
        with run.session.lock:
            run.session.active.discard(run)
            run.session.last_used = time.monotonic()
        self.records.run_finished(run)

    def cancel(self, run: Run) -> None:
        """Ask the fabric to cancel the run (through the statement's cancel endpoint)."""
        run.cancel_requested = True
        statement = run.current if isinstance(run, TableRun) else run
        if isinstance(statement, StatementRun) and statement is not run:
            statement.cancel_requested = True
        if isinstance(statement, StatementRun) and statement.statement_id is not None and not statement.done:
            self._scheduler.call_soon(self._cancel_remote, statement)

    def _cancel_remote(self, run: StatementRun) -> None:
        remote = run.session.remote
        if remote is None:
            return
        try:
            run.session.engine.cancel(remote.id, run.statement_id)
        except EngineError as exc:
            log.warning("cancel of run %s failed: %s", run.id, exc)

    def submit_table(
        self,
        user: str,
        notebook: str,
        fabric_ref: str,
        source: str,
        limit: int,
        prefer_arrow: bool = True,
        notify: Notify = _quiet,
    ) -> TableRun:
        """Fetch a remote DataFrame (``source`` evaluates to one there) as a table run."""
        managed = self.session(user, notebook, fabric_ref, notify)
        run = self._table_run(managed, source, limit)
        self._track(run)
        threading.Thread(
            target=self._fetch, args=(run, prefer_arrow), name=f"table-{run.id[:8]}", daemon=True
        ).start()
        return run

    def _table_run(self, managed: ManagedSession, source: str, limit: int) -> TableRun:
        """A table run within this service's bounds: rows per table, and bytes a user has waiting."""
        budget = self.settings.max_buffered_bytes
        if budget is not None:
            waiting = self.buffered_bytes(managed.user)
            if waiting >= budget:
                raise LimitReached(
                    f"You have {waiting / 2**20:,.0f} MiB of table results waiting on the server, the most "
                    f"allowed ({budget / 2**20:,.0f} MiB): fetch or cancel them, or wait a minute."
                )
        cap, note = self.settings.max_table_rows, None
        if cap is not None and (limit < 0 or limit > cap):
            limit = cap
            note = (
                f"The server keeps at most {cap:,} rows of a table (c.ProphecyJupyter.max_table_rows): "
                f"you get the first {cap:,}."
            )
        run = TableRun(managed, source, limit)
        if note:
            run.notes.append(note)
        return run

    def buffered_bytes(self, user: str) -> int:
        """Bytes of the user's table results held here until they are fetched."""
        with self._lock:
            runs = [r for r in self._runs.values() if r.session.user == user]
        return sum(r.payload.size for r in runs if r.payload is not None)

    def table_data(self, run: Run) -> TablePayload:
        """A finished table run's data, for a client to fetch (kept a little longer, so that a
        retried fetch finds it)."""
        payload = run.payload
        if payload is None:
            raise NotFound(f"Run '{run.id}' has no table (not a finished run with a table).")
        run.fetched_at = run.fetched_at or time.monotonic()
        return payload

    def _fetch(self, run: TableRun, prefer_arrow: bool) -> None:
        """Drive a table run: the first statement brings the header and first chunk, then the rest."""
        key = uuid.uuid4().hex
        code = fetch_code(run.source, run.limit, key, prefer_arrow, self.settings.chunk_chars)
        first = self._statement_of(run, code)
        if first is None:
            return
        header, chunk = parse_first_output(first.result.text)
        del first
        assembler = TableAssembler(header)
        assembler.add(chunk)
        del chunk
        for index in range(1, header.chunks):
            part = self._statement_of(run, chunk_code(key, index, last=index == header.chunks - 1))
            if part is None:
                return
            assembler.add(part.result.text)
            del part
        run.payload = assembler.payload(run.limit)
        self._finish(
            run, RunState.FINISHED, Result(ResultKind.TABLE, truncated=header.truncated, row_limit=run.limit)
        )

    def submit_sql(
        self,
        user: str,
        notebook: str,
        fabric_ref: str,
        query: str,
        limit: int,
        parameters: Sequence[SqlParameter] = (),
        notify: Notify = _quiet,
    ) -> TableRun:
        """A SQL query's result as a table run: from engines that run SQL themselves (warehouses)
        directly, from Spark fabrics as the DataFrame of ``spark.sql``."""
        managed = self.session(user, notebook, fabric_ref, notify)
        if not isinstance(managed.engine, RunsSql):
            return self.submit_table(
                user, notebook, fabric_ref, sql_source(query, parameters), limit, True, notify
            )
        run = self._table_run(managed, query, limit)
        self._track(run)
        threading.Thread(
            target=self._query, args=(run, tuple(parameters)), name=f"sql-{run.id[:8]}", daemon=True
        ).start()
        return run

    def _query(self, run: TableRun, parameters: tuple[SqlParameter, ...]) -> None:
        statement = self._statement_of(run, run.source, "sql", (parameters, run.limit))
        if statement is None:
            return
        run.payload, statement.payload = statement.payload, None
        self._finish(run, RunState.FINISHED, statement.result)

    def _statement_of(
        self,
        run: TableRun,
        code: str,
        language: str = "pyspark",
        query: tuple[Sequence[SqlParameter], int] | None = None,
    ) -> StatementRun | None:
        """One statement of a table run; None (and the run over) when it did not succeed."""
        if run.cancel_requested:
            self._finish(
                run, RunState.CANCELLED, Result.of_error("Cancelled", "The table fetch was cancelled.")
            )
            return None
        statement = StatementRun(run.session, code, language)
        statement.query = query
        run.current = statement
        run.state = RunState.RUNNING
        with self._lock:
            self._runs[statement.id] = statement
        self._scheduler.call_soon(self._send, statement)
        statement.wait()
        run.notes.extend(statement.notes)
        if statement.state != RunState.FINISHED:
            state = RunState.CANCELLED if run.cancel_requested else statement.state
            self._finish(run, state, statement.result)
            return None
        return statement

    def find_run(self, user: str, run_id: str) -> Run:
        with self._lock:
            run = self._runs.get(run_id)
        if run is None or run.session.user != user:
            raise NotFound(f"No run '{run_id}' of yours (finished runs are kept for a while only).")
        return run

    # -- in-process conveniences ------------------------------------------------------------

    def run(
        self,
        user: str,
        notebook: str,
        fabric_ref: str,
        code: str,
        language: str = "pyspark",
        waiter: Waiter = wait_for,
        notify: Notify = _quiet,
    ) -> StatementRun:
        """Submit and wait (through ``waiter``, which may show progress or cancel)."""
        return waiter(self.submit(user, notebook, fabric_ref, code, language, notify))

    def fetch_table(
        self,
        user: str,
        notebook: str,
        fabric_ref: str,
        source: str,
        limit: int,
        waiter: Waiter = wait_for,
        notify: Notify = _quiet,
        prefer_arrow: bool = True,
    ) -> Result:
        """A remote DataFrame as a typed pandas table (at most ``limit`` rows; < 0 for all)."""
        return table_result(
            waiter(self.submit_table(user, notebook, fabric_ref, source, limit, prefer_arrow, notify))
        )

    def fetch_sql(
        self,
        user: str,
        notebook: str,
        fabric_ref: str,
        query: str,
        limit: int,
        parameters: Sequence[SqlParameter] = (),
        waiter: Waiter = wait_for,
        notify: Notify = _quiet,
    ) -> Result:
        """A SQL query's result as a typed pandas table (see :meth:`submit_sql`)."""
        return table_result(
            waiter(self.submit_sql(user, notebook, fabric_ref, query, limit, parameters, notify))
        )

    def complete(self, user: str, notebook: str, fabric_ref: str, code: str, cursor: int) -> list[str]:
        """Completions from the remote interpreter (empty when the session is not up)."""
        managed = self.managed(user, notebook, fabric_ref)
        if not managed.live:
            return []
        try:
            return managed.engine.complete(managed.remote.id, code, cursor, "pyspark")
        except EngineError:
            return []

    # -- housekeeping -----------------------------------------------------------------------

    def _housekeeping(self) -> None:
        now = time.monotonic()
        with self._lock:
            sessions = list(self._sessions.values())
            stale = [
                run_id
                for run_id, run in self._runs.items()
                if run.done and now - (run.finished_at or now) > self.settings.finished_runs_kept
            ]
            for run_id in stale:
                del self._runs[run_id]
            for run in self._runs.values():
                if run.fetched_at and now - run.fetched_at > self.settings.fetched_tables_kept:
                    run.payload = None
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
                log.info("closing the idle session %s on %s", managed.id, managed.fabric.ref)
                self._scheduler.call_soon(self._close, managed, "closed after sitting idle")

    def _check_health(self, managed: ManagedSession) -> None:
        try:
            remote = managed.engine.session(managed.remote.id)
        except SessionGone as exc:
            self._end(managed, str(exc))
            return
        except EngineError:
            return
        if remote.state == SessionState.ENDED:
            self._end(
                managed,
                f"The session on fabric '{managed.fabric.ref}' ended ({remote.raw_state}) while a "
                "statement was running; its state is lost. The next cell starts a new session.",
            )

    def _mark_ended(self, managed: ManagedSession, reason: str) -> None:
        if managed.remote is not None and managed.live:
            managed.remote = replace(managed.remote, state=SessionState.ENDED)
            managed.ended_reason = reason
            self.records.ended(managed.id, reason)

    def _end(self, managed: ManagedSession, reason: str) -> None:
        self._mark_ended(managed, reason)
        for run in list(managed.active):
            self._finish(run, RunState.FAILED, Result.of_error("SessionGone", reason))

    def _keepalive(self, managed: ManagedSession) -> None:
        with contextlib.suppress(EngineError):
            managed.engine.keepalive(managed.remote.id)

    def _close(self, managed: ManagedSession, reason: str) -> None:
        for run in list(managed.active):
            self._finish(run, RunState.CANCELLED, Result.of_error("Cancelled", f"The session was {reason}."))
        remote, managed.remote = managed.remote, None
        managed.ended_reason = reason
        if remote is not None and remote.state != SessionState.ENDED:
            with contextlib.suppress(EngineError):
                managed.engine.close_session(remote.id)
        self.records.ended(managed.id, reason)

    def rehydrate(self) -> list[dict[str, Any]]:
        """After a restart: take back the recorded sessions that are still alive on their fabrics;
        record the others as ended, with the reason. Returns what happened to each."""
        report = []
        for record in self.records.sessions(LIVE):
            outcome = {"id": record.id, "user": record.username, "notebook": record.notebook}
            try:
                fabric = self.fabrics.get(record.username, record.fabric_id)
                engine = self._engine(record.username, fabric)
                remote = engine.session(record.remote_id) if record.remote_id else None
            except SessionGone:
                remote, reason = None, "ended while the server was down (the fabric no longer knows it)"
            except (EngineError, NotFound, Invalid) as exc:
                remote, reason = None, f"could not be checked after the server restarted: {exc}"
            else:
                reason = (
                    f"ended while the server was down ({remote.raw_state if remote else 'never started'})"
                )
            if remote is None or remote.state == SessionState.ENDED:
                self.records.ended(record.id, reason)
                report.append({**outcome, "outcome": "ended", "reason": reason})
                continue
            spec = SessionSpec(
                kind=record.spec.get("kind", "pyspark"),
                conf=record.spec.get("conf", {}),
                resources=record.spec.get("resources", {}),
            )
            managed = ManagedSession(
                record.username, record.notebook, fabric, engine, spec, id=record.id, remote=remote
            )
            with self._lock:
                self._sessions[(record.username, record.notebook, fabric.id)] = managed
            report.append({**outcome, "outcome": "reattached", "fabric": fabric.ref})
        for item in report:
            log.info("session %s of %s (%s): %s", item["id"], item["user"], item["notebook"], item["outcome"])
        return report

    # -- inspection and shutdown ------------------------------------------------------------

    def sessions_of(self, user: str, notebook: str | None = None) -> list[ManagedSession]:
        with self._lock:
            return [m for (u, nb, _), m in self._sessions.items() if u == user and notebook in (None, nb)]

    def ended_sessions(self, user: str, notebook: str | None = None, most: int = 20) -> list[dict[str, Any]]:
        """Recorded sessions of the user that have ended, newest first, with the reason."""
        records = [r for r in self.records.sessions(ENDED, user) if notebook in (None, r.notebook)]
        return [
            {
                "id": r.id,
                "notebook": r.notebook,
                "fabric": r.fabric_id,
                "state": "ended",
                "remote_id": r.remote_id,
                "app_id": None,
                "ended_reason": r.ended_reason,
                "runs": [],
            }
            for r in records[:most]
        ]

    def find_session(self, user: str, session_id: str) -> ManagedSession:
        match = next((m for m in self.sessions_of(user) if m.id == session_id), None)
        if match is None:
            raise NotFound(f"No session '{session_id}' of yours.")
        return match

    def refresh(self, managed: ManagedSession) -> ManagedSession:
        """Ask the fabric how the session is now."""
        if managed.live:
            try:
                managed.remote = managed.engine.session(managed.remote.id)
            except SessionGone as exc:
                self._mark_ended(managed, str(exc))
            except EngineError:
                pass
        return managed

    def status(self, user: str, notebook: str) -> list[dict[str, Any]]:
        """The notebook's sessions as the fabrics see them now."""
        return [self.refresh(m).describe() for m in self.sessions_of(user, notebook)]

    def logs(self, managed: ManagedSession, size: int = 100) -> list[str]:
        if managed.remote is None:
            return []
        return managed.engine.logs(managed.remote.id, size)

    def close(self, user: str, notebook: str, fabric_ref: str | None = None) -> int:
        """Close the notebook's sessions (on one fabric, or all); returns how many."""
        fabric_id = self.fabric(user, fabric_ref).id if fabric_ref else None
        with self._lock:
            keys = [k for k in self._sessions if k[:2] == (user, notebook) and fabric_id in (None, k[2])]
            closing = [self._sessions.pop(k) for k in keys]
        for managed in closing:
            self._close(managed, "stopped")
        return len(closing)

    def close_session(self, managed: ManagedSession) -> None:
        with self._lock:
            self._sessions.pop((managed.user, managed.notebook, managed.fabric.id), None)
        self._close(managed, "stopped")

    def shutdown(self, close_sessions: bool = True) -> None:
        """Stop polling; close every session unless they should outlive this process (a server
        that will rehydrate them)."""
        with self._lock:
            sessions = list(self._sessions.values())
            self._sessions.clear()
        for managed in sessions:
            if close_sessions or managed.fabric.kind_of.ends_with_server:
                self._close(managed, "stopped with the server" if not close_sessions else "stopped")
        self._scheduler.stop()
        for engine in self._engines.values():
            engine.close()
        self.engines.local_gateway.stop()
        self.records.close()
