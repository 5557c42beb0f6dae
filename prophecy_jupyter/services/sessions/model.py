"""A user's notebook's session on one fabric (``ManagedSession``), the runs on it (code sent as a
statement, or a table fetched with several), and the small pieces the service's parts share."""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from prophecy_jupyter.engines.base import Engine, RemoteSession, SessionSpec, SessionState
from prophecy_jupyter.results.model import Result, RunState
from prophecy_jupyter.results.transport import TablePayload
from prophecy_jupyter.services.fabrics import Fabric
from prophecy_jupyter.services.sessions.latch import OPEN, Latch
from prophecy_jupyter.sql_parameters import SqlParameter

Notify = Callable[[str], None]
"""Says something to the user while work goes on (a progress line, a note)."""


def quiet(_message: str) -> None:
    """The default for callers that show nothing."""


def session_name(user: str) -> str:
    """A name unique among the fabric's sessions, that tells whose session it is."""
    return f"prophecy-{re.sub(r'[^A-Za-z0-9._-]', '-', user)}-{uuid.uuid4().hex[:8]}"


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
    notices: list[str] = field(default_factory=list)
    """What the user should hear at their next cell (say, that the session before this one ended)."""
    lock: threading.RLock = field(default_factory=threading.RLock)

    @property
    def key(self) -> tuple[str, str, str]:
        """How the service addresses it: user, notebook, fabric id."""
        return (self.user, self.notebook, self.fabric.id)

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


_OUTCOMES = threading.Lock()
"""Guards every run's outcome, notes and callbacks: held for a few assignments, never while
calling out."""


class Run:
    """One piece of work on a session: queued → running → finished/failed/cancelled."""

    kind = "statement"
    SUMMARY_CHARS = 120

    def __init__(self, session: ManagedSession, text: str = ""):
        self.id = uuid.uuid4().hex
        self.summary = next((line.strip() for line in text.splitlines() if line.strip()), "")[
            : self.SUMMARY_CHARS
        ]
        """The first line of the run's code or query, to tell runs apart in a list."""
        self.session = session
        self.state = RunState.QUEUED
        self.result: Result | None = None
        self.submitted_at = time.monotonic()
        self.finished_at: float | None = None
        self.cancel_requested = False
        self.payload: TablePayload | None = None
        """A table result's data until it is taken (a table run's, or a SQL warehouse statement's)."""
        self.fetched_at: float | None = None
        """When a client first took the table's data (it is dropped a little later)."""
        self.notes: tuple[str, ...] = ()
        """What the user should hear about the run, e.g. that its session was lost and reopened."""
        self._done = Latch()
        self._callbacks: list[Callable[[], None]] | None = None
        # A server holds thousands of finished runs, and each garbage collection scans every
        # container they keep: a finished run keeps none it does not need (its latch becomes the
        # shared open one, its callbacks and notes none until there are some, and its outcome is
        # guarded by the lock all runs share, since a lock is such a container).

    @property
    def progress(self) -> float | None:
        return None

    @property
    def detail(self) -> str | None:
        """What the run waits on, in words, while it runs (None: nothing to say)."""
        return None

    @property
    def done(self) -> bool:
        return self._done.is_set()

    @property
    def elapsed(self) -> float:
        return (self.finished_at or time.monotonic()) - self.submitted_at

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def note(self, text: str) -> None:
        """Tell the user ``text`` with the run's outcome."""
        with _OUTCOMES:
            self.notes = (*self.notes, text)

    def add_done_callback(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (from any thread) once the run is over, or now if it is."""
        with _OUTCOMES:
            if not self._done.is_set():
                if self._callbacks is None:
                    self._callbacks = []
                self._callbacks.append(callback)
                return
        callback()

    def finish(self, state: str, result: Result | None) -> bool:
        """Record the outcome once; False if the run was already over."""
        with _OUTCOMES:
            if self._done.is_set():
                return False
            self.state = state
            self.result = result
            self.finished_at = time.monotonic()
            self._done.set()
            self._done = OPEN  # waiters already in the run's own latch were just let go
            callbacks, self._callbacks = self._callbacks or (), None
        for callback in callbacks:
            callback()
        return True

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "session": self.session.id,
            "state": self.state,
            "progress": self.progress,
            "detail": self.detail,
            "elapsed": round(self.elapsed, 3),
            "notes": list(self.notes),
            "summary": self.summary,
        }


class StatementRun(Run):
    """Code run as one remote statement."""

    def __init__(self, session: ManagedSession, code: str, language: str):
        super().__init__(session, code)
        self.code = code
        self.language = language
        self.statement_id: str | None = None
        self.statement_progress: float | None = None
        self.statement_detail: str | None = None
        self.server_started_ms = 0
        self.server_completed_ms = 0
        """When the fabric says the statement started and completed (0: it did not say)."""
        self.sent_at: float | None = None
        self.seen_done_at: float | None = None
        """Monotonic times of the submit to the fabric and of the answer that said it was done."""
        self.query: tuple[Sequence[SqlParameter], int] | None = None
        """For engines that run SQL themselves: the statement's parameters and row limit."""
        self.reopened = False
        """Whether the run's session was reopened to send it (done at most once)."""
        self.polls = 0
        self.failing_since: float | None = None
        """When polls of this run started failing (None while they succeed)."""

    @property
    def progress(self) -> float | None:
        return self.statement_progress

    @property
    def detail(self) -> str | None:
        return self.statement_detail

    @property
    def remote_ms(self) -> int | None:
        """How long the fabric says the statement ran, once it has finished."""
        started, completed = self.server_started_ms, self.server_completed_ms
        return completed - started if started and completed else None

    @property
    def fabric_ms(self) -> float | None:
        """From sending the statement to the fabric's answer that it was done (our share excluded)."""
        if self.sent_at is None or self.seen_done_at is None:
            return None
        return round((self.seen_done_at - self.sent_at) * 1000, 3)

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "statement": self.statement_id,
            "language": self.language,
            "remote_ms": self.remote_ms,
            "fabric_ms": self.fabric_ms,
        }


class StepsRun(Run):
    """A run made of statements sent one after another (``current`` is the one on its way)."""

    what = "run"
    """The run in words, for messages."""

    def __init__(self, session: ManagedSession, text: str):
        super().__init__(session, text)
        self.current: StatementRun | None = None

    @property
    def progress(self) -> float | None:
        current = self.current
        return current.progress if current is not None and not self.done else None

    @property
    def detail(self) -> str | None:
        current = self.current
        return current.detail if current is not None and not self.done else None


class TableRun(StepsRun):
    """A remote DataFrame fetched with a few statements (see ``results.transport``)."""

    kind = "table"
    what = "table fetch"

    def __init__(self, session: ManagedSession, source: str, limit: int):
        super().__init__(session, source)
        self.source = source
        self.limit = limit

    def describe(self) -> dict[str, Any]:
        body = {**super().describe(), "limit": self.limit}
        if self.payload is not None:
            header = self.payload.header
            body.update(rows=header.rows, truncated=header.truncated, format=header.format)
            if header.query_id:
                body["query_id"] = header.query_id
        return body


Waiter = Callable[[Run], Run]
"""Waits for a run (and may show progress, or cancel it when interrupted)."""


def wait_for(run: Run) -> Run:
    """The plain waiter: block until the run is done."""
    run.wait()
    return run


def table_result(run: Run) -> Result:
    """A finished run's result, its table data (if any) taken and made a typed DataFrame."""
    if run.payload is None:
        return run.result or Result.of_error("Cancelled", "The run was cancelled.")
    from prophecy_jupyter.results.frames import frame_from_payload  # pandas, on first use

    payload, run.payload = run.payload, None
    return Result.of_table(
        frame_from_payload(payload), truncated=payload.header.truncated, row_limit=payload.limit
    )
