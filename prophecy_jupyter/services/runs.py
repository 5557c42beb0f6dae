"""Runs: code sent to a session (a statement), or a table fetched from it (several statements)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from prophecy_jupyter.engines.base import RunState
from prophecy_jupyter.results.model import Result
from prophecy_jupyter.results.transport import TablePayload
from prophecy_jupyter.sql_parameters import SqlParameter

if TYPE_CHECKING:
    from prophecy_jupyter.services.sessions import ManagedSession


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
        self.notes: list[str] = []
        """What the user should hear about the run, e.g. that its session was lost and reopened."""
        self._done = threading.Event()
        self._callbacks: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    @property
    def progress(self) -> float | None:
        return None

    @property
    def done(self) -> bool:
        return self._done.is_set()

    @property
    def elapsed(self) -> float:
        return (self.finished_at or time.monotonic()) - self.submitted_at

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def add_done_callback(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (from any thread) once the run is over, or now if it is."""
        with self._lock:
            if not self._done.is_set():
                self._callbacks.append(callback)
                return
        callback()

    def finish(self, state: str, result: Result | None) -> bool:
        """Record the outcome once; False if the run was already over."""
        with self._lock:
            if self._done.is_set():
                return False
            self.state = state
            self.result = result
            self.finished_at = time.monotonic()
            self._done.set()
            callbacks, self._callbacks = self._callbacks, []
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
        self.server_ms: tuple[int, int] = (0, 0)
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
    def remote_ms(self) -> int | None:
        """How long the fabric says the statement ran, once it has finished."""
        started, completed = self.server_ms
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


class TableRun(Run):
    """A remote DataFrame fetched with a few statements (see ``results.transport``)."""

    kind = "table"

    def __init__(self, session: ManagedSession, source: str, limit: int):
        super().__init__(session, source)
        self.source = source
        self.limit = limit
        self.current: StatementRun | None = None

    @property
    def progress(self) -> float | None:
        current = self.current
        return current.progress if current is not None and not self.done else None

    def describe(self) -> dict[str, Any]:
        body = {**super().describe(), "limit": self.limit}
        if self.payload is not None:
            header = self.payload.header
            body.update(rows=header.rows, truncated=header.truncated, format=header.format)
        return body
