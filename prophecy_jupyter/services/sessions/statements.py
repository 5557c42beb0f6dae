"""Statements: code sent to a session from the pool, polled by one scheduler with the engine's
own cadence (or a long poll where the engine has one), cancelled through the fabric, and sent
once more, in a new session, only when the fabric lost the session before it took the code."""

from __future__ import annotations

import logging
import time

from prophecy_jupyter.engines.base import StatementStatus
from prophecy_jupyter.errors import EngineError, SessionGone, StatementLost
from prophecy_jupyter.results.model import Result, RunState
from prophecy_jupyter.services.sessions.ledger import Ledger
from prophecy_jupyter.services.sessions.lifecycle import Lifecycle
from prophecy_jupyter.services.sessions.model import ManagedSession, Run, StatementRun, StepsRun
from prophecy_jupyter.services.sessions.scheduler import Scheduler
from prophecy_jupyter.services.settings import ServiceSettings

log = logging.getLogger(__name__)


class Statements:
    def __init__(self, scheduler: Scheduler, ledger: Ledger, lifecycle: Lifecycle, settings: ServiceSettings):
        self.scheduler = scheduler
        self.ledger = ledger
        self.lifecycle = lifecycle
        self.settings = settings

    def submit(self, managed: ManagedSession, code: str, language: str) -> StatementRun:
        """Queue code on a live session; returns at once with the run."""
        run = StatementRun(managed, code, language)
        self.ledger.track(run)
        self.send_soon(run)
        return run

    def send_soon(self, run: StatementRun) -> None:
        """Send the statement from the pool (its outcome comes through the run)."""
        self.scheduler.call_soon(self._send, run)

    def _send(self, run: StatementRun) -> None:
        managed = run.session
        if run.cancel_requested:
            result = Result.of_error("Cancelled", "The run was cancelled before it started.")
            self.ledger.finish(run, RunState.CANCELLED, result)
            return
        remote = managed.remote
        if remote is None:
            self.ledger.finish(
                run, RunState.FAILED, Result.of_error("SessionGone", "The session is not open.")
            )
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
            self.ledger.fail(run, exc)
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
        self.ledger.mark_ended(managed, str(gone))
        if run.reopened:
            self.ledger.fail(run, gone)
            return
        run.reopened = True
        run.note(f"{gone} This cell runs in a new one.")
        with managed.lock:
            if not managed.live:
                managed.remote, managed.ended_reason = None, None
        try:
            self.lifecycle.ensure_started(managed, run.note)
        except EngineError as exc:
            self.ledger.fail(run, exc)
            return
        self._send(run)

    def _schedule_poll(self, run: StatementRun, first: bool = False) -> None:
        engine = run.session.engine
        if engine.supports_long_poll:
            self.scheduler.call_soon(self._poll, run)
            return
        policy = engine.poll_policy or self.settings.poll
        delay = policy.first_delay if first else policy.next_delay(run.elapsed)
        self.scheduler.call_at(time.monotonic() + delay, self._poll, run)

    def _poll(self, run: StatementRun) -> None:
        managed = run.session
        remote = managed.remote
        if run.done or remote is None:
            return
        engine = managed.engine
        wait = self.settings.long_poll_wait if engine.supports_long_poll else 0.0
        try:
            status = engine.poll(remote.id, run.statement_id, wait=wait)
        except (SessionGone, StatementLost) as exc:
            self.ledger.fail(run, exc)
            return
        except EngineError as exc:
            self._poll_failed(run, exc)
            return
        run.failing_since = None
        run.polls += 1
        if not self._apply(run, status):
            self._schedule_poll(run)

    def _poll_failed(self, run: StatementRun, exc: EngineError) -> None:
        """Polls that fail are tried again, more slowly, until the failure budget is spent."""
        now = time.monotonic()
        run.failing_since = run.failing_since or now
        budget = self.settings.poll_failure_budget
        if now - run.failing_since > budget:
            lost = EngineError(
                f"Lost contact with fabric '{run.session.fabric.ref}' for {budget:.0f} s while the "
                f"statement ran ({exc}). It may still be running there; check with `%fabric status`."
            )
            self.ledger.fail(run, lost)
            return
        self.scheduler.call_at(now + min(5.0, 0.5 + (now - run.failing_since) / 4), self._poll, run)

    def _apply(self, run: StatementRun, status: StatementStatus) -> bool:
        """Take a status in; True when the run is over."""
        if status.progress is not None:
            run.statement_progress = status.progress
        run.statement_detail = None if status.done else status.detail
        run.server_started_ms, run.server_completed_ms = status.started_ms or 0, status.completed_ms or 0
        if status.payload is not None:
            run.payload = status.payload
        if status.done:
            run.seen_done_at = time.monotonic()
            self.ledger.finish(run, status.state, status.result)
            return True
        run.state = status.state
        return False

    def cancel(self, run: Run) -> None:
        """Ask the fabric to cancel the run (through the statement's cancel endpoint)."""
        run.cancel_requested = True
        statement = run.current if isinstance(run, StepsRun) else run
        if isinstance(statement, StatementRun) and statement is not run:
            statement.cancel_requested = True
        if isinstance(statement, StatementRun) and statement.statement_id is not None and not statement.done:
            self.scheduler.call_soon(self._cancel_remote, statement)

    def _cancel_remote(self, run: StatementRun) -> None:
        remote = run.session.remote
        if remote is None:
            return
        try:
            run.session.engine.cancel(remote.id, run.statement_id)
        except EngineError as exc:
            log.warning("cancel of run %s failed: %s", run.id, exc)
