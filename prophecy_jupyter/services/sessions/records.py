"""What the session service writes down, so a restarted server finds its remote sessions again."""

from __future__ import annotations

import datetime
import logging
import queue
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import bindparam, select, update

from prophecy_jupyter.store.database import Database
from prophecy_jupyter.store.models import RunRow, SessionRow, utcnow

if TYPE_CHECKING:
    from prophecy_jupyter.services.sessions.model import ManagedSession, Run

LIVE, ENDED = "live", "ended"
RUN_RECORDS_EVERY = 0.5
"""Seconds the run records writer lets changes gather before it stores them."""
RUN_END_FIELDS = ("state", "error", "statement_id", "finished_at")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SessionRecord:
    id: str
    username: str
    notebook: str
    fabric_id: str
    remote_id: str | None
    state: str
    spec: dict[str, Any]
    ended_reason: str | None
    last_used: datetime.datetime


class SessionRecords(Protocol):
    def opened(self, managed: ManagedSession) -> None: ...

    def ended(self, session_id: str, reason: str) -> None: ...

    def run_started(self, run: Run) -> None: ...

    def run_finished(self, run: Run) -> None: ...

    def sessions(self, state: str, username: str | None = None) -> list[SessionRecord]: ...

    def close(self) -> None: ...


class NoRecords:
    """For a service that lives and dies with its process (CLI, a kernel without a server)."""

    def opened(self, managed: ManagedSession) -> None:
        pass

    def ended(self, session_id: str, reason: str) -> None:
        pass

    def run_started(self, run: Run) -> None:
        pass

    def run_finished(self, run: Run) -> None:
        pass

    def sessions(self, state: str, username: str | None = None) -> list[SessionRecord]:
        return []

    def close(self) -> None:
        pass


class StoreSessionRecords:
    """Sessions and runs in the store.

    Sessions are written at once (a restarted server relies on them). Runs are history: one
    writer thread stores them in order, every ``RUN_RECORDS_EVERY`` seconds at most, in one
    transaction, so a statement never waits for the database. A run that starts and ends within
    one such batch is one row written once.
    """

    def __init__(self, db: Database):
        self.db = db
        self._runs: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
        self._closing = threading.Event()
        self._writer = threading.Thread(target=self._write_runs, name="prophecy-run-records", daemon=True)
        self._writer.start()

    def opened(self, managed: ManagedSession) -> None:
        spec = {"kind": managed.spec.kind, "conf": managed.spec.conf, "resources": managed.spec.resources}
        with self.db.transaction() as session:
            row = session.get(SessionRow, managed.id)
            if row is None:
                row = SessionRow(
                    id=managed.id,
                    username=managed.user,
                    notebook=managed.notebook,
                    fabric=managed.fabric.id,
                    state=LIVE,
                )
                session.add(row)
            row.remote_id = managed.remote.id if managed.remote else None
            row.state, row.spec, row.ended_reason, row.last_used = LIVE, spec, None, utcnow()

    def ended(self, session_id: str, reason: str) -> None:
        with self.db.transaction() as session:
            session.execute(
                update(SessionRow)
                .where(SessionRow.id == session_id)
                .values(state=ENDED, ended_reason=reason, last_used=utcnow())
            )

    def run_started(self, run: Run) -> None:
        session = run.session
        self._runs.put(
            {
                "id": run.id,
                "session_id": session.id,
                "username": session.user,
                "kind": run.kind,
                "state": run.state,
                "submitted_at": utcnow(),
            }
        )

    def run_finished(self, run: Run) -> None:
        error = run.result.error_summary() if run.result is not None and not run.result.ok else None
        self._runs.put(
            {
                "id": run.id,
                "session_id": run.session.id,
                "state": run.state,
                "error": error,
                "statement_id": getattr(run, "statement_id", None),
                "finished_at": utcnow(),
            }
        )

    def _write_runs(self) -> None:
        stopping = False
        while not stopping:
            batch = [self._runs.get()]
            self._closing.wait(RUN_RECORDS_EVERY)
            while True:
                try:
                    batch.append(self._runs.get_nowait())
                except queue.Empty:
                    break
            stopping = None in batch
            try:
                self._store([change for change in batch if change is not None])
            except Exception:
                log.exception("%d run record(s) could not be stored", len(batch))

    def _store(self, batch: list[dict[str, Any]]) -> None:
        """One transaction: new runs inserted (with their end when it is in the batch), ends of
        runs stored earlier updated, and each session's last use."""
        started: dict[str, dict[str, Any]] = {}
        ended: dict[str, dict[str, Any]] = {}
        last_used: dict[str, datetime.datetime] = {}
        for change in batch:
            if "finished_at" not in change:
                started[change["id"]] = {**change, "error": None, "statement_id": None, "finished_at": None}
                continue
            end = {key: change[key] for key in RUN_END_FIELDS}
            if change["id"] in started:
                started[change["id"]].update(end)
            else:
                ended[change["id"]] = {"run": change["id"], **{f"new_{k}": v for k, v in end.items()}}
            last_used[change["session_id"]] = change["finished_at"]
        runs, sessions = RunRow.__table__, SessionRow.__table__
        with self.db.transaction() as session:
            connection = session.connection()
            if started:
                connection.execute(runs.insert(), list(started.values()))
            if ended:
                values = {key: bindparam(f"new_{key}") for key in RUN_END_FIELDS}
                connection.execute(
                    runs.update().where(runs.c.id == bindparam("run")).values(values), list(ended.values())
                )
            if last_used:
                connection.execute(
                    sessions.update()
                    .where(sessions.c.id == bindparam("session"))
                    .values(last_used=bindparam("at")),
                    [{"session": key, "at": at} for key, at in last_used.items()],
                )

    def close(self) -> None:
        """Store the runs still waiting, then stop the writer."""
        self._closing.set()
        self._runs.put(None)
        self._writer.join(timeout=30)

    def sessions(self, state: str, username: str | None = None) -> list[SessionRecord]:
        with self.db.transaction() as session:
            query = select(SessionRow).where(SessionRow.state == state)
            if username is not None:
                query = query.where(SessionRow.username == username)
            return [
                SessionRecord(
                    r.id,
                    r.username,
                    r.notebook,
                    r.fabric,
                    r.remote_id,
                    r.state,
                    r.spec,
                    r.ended_reason,
                    r.last_used,
                )
                for r in session.scalars(query.order_by(SessionRow.last_used.desc()))
            ]
