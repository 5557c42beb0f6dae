"""The bookkeeping of runs and sessions: a run is tracked on its session and in the registry when
it starts and let go once when it ends; a session that ends is marked so, with the reason; and
each change is written to the records a restarted server reads."""

from __future__ import annotations

import time
from dataclasses import replace

from prophecy_jupyter.engines.base import SessionState
from prophecy_jupyter.errors import EngineError, SessionGone
from prophecy_jupyter.results.model import Result, RunState
from prophecy_jupyter.services.sessions.model import ManagedSession, Run
from prophecy_jupyter.services.sessions.records import SessionRecords
from prophecy_jupyter.services.sessions.registry import Registry
from prophecy_jupyter.services.settings import ServiceSettings


class Ledger:
    def __init__(self, registry: Registry, records: SessionRecords, settings: ServiceSettings):
        self.registry = registry
        self.records = records
        self.settings = settings

    def track(self, run: Run) -> None:
        """A run starts: it keeps its session in use, and can be found by its id."""
        managed = run.session
        with managed.lock:
            managed.active.add(run)
            managed.last_used = time.monotonic()
            if not managed.next_keepalive:
                managed.next_keepalive = time.monotonic() + self.settings.keepalive_interval
        self.registry.add_run(run)
        self.records.run_started(run)

    def finish(self, run: Run, state: str, result: Result | None) -> None:
        """A run ends with ``state`` and ``result`` (the first outcome wins)."""
        if not run.finish(state, result):
            return
        with run.session.lock:
            run.session.active.discard(run)
            run.session.last_used = time.monotonic()
        self.registry.finished(run)
        self.records.run_finished(run)

    def fail(self, run: Run, exc: EngineError) -> None:
        """A run fails with ``exc``; a session the fabric lost is marked ended."""
        if isinstance(exc, SessionGone):
            self.mark_ended(run.session, str(exc))
        self.finish(run, RunState.FAILED, Result.of_error(type(exc).__name__, str(exc)))

    def mark_ended(self, managed: ManagedSession, reason: str) -> None:
        """The fabric ended the session (the next cell starts a new one)."""
        if managed.remote is not None and managed.live:
            managed.remote = replace(managed.remote, state=SessionState.ENDED)
            managed.ended_reason = reason
            self.records.ended(managed.id, reason)

    def end(self, managed: ManagedSession, reason: str) -> None:
        """The session ended under its running statements: they fail with the reason."""
        self.mark_ended(managed, reason)
        for run in list(managed.active):
            self.finish(run, RunState.FAILED, Result.of_error("SessionGone", reason))

    def cancel_all(self, managed: ManagedSession, reason: str) -> None:
        """The session is being stopped: its runs are cancelled."""
        for run in list(managed.active):
            self.finish(run, RunState.CANCELLED, Result.of_error("Cancelled", f"The session was {reason}."))
