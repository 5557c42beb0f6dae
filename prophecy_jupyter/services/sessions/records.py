"""What the session service writes down, so a restarted server finds its remote sessions again."""

from __future__ import annotations

import datetime
import logging
import queue
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import select, update

from prophecy_jupyter.store.database import Database
from prophecy_jupyter.store.models import RunRow, SessionRow, utcnow

if TYPE_CHECKING:
    from prophecy_jupyter.services.sessions.model import ManagedSession, Run

LIVE, ENDED = "live", "ended"
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
    writer thread stores them in order, many per transaction, so a statement never waits for
    the database.
    """

    def __init__(self, db: Database):
        self.db = db
        self._runs: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
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
            {"id": run.id, "session": session.id, "user": session.user, "kind": run.kind, "state": run.state}
        )

    def run_finished(self, run: Run) -> None:
        error = run.result.error_summary() if run.result is not None and not run.result.ok else None
        self._runs.put(
            {
                "id": run.id,
                "session": run.session.id,
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
            while True:
                try:
                    batch.append(self._runs.get_nowait())
                except queue.Empty:
                    break
            stopping = None in batch
            try:
                with self.db.transaction() as session:
                    for change in filter(None, batch):
                        self._apply(session, change)
            except Exception:
                log.exception("%d run record(s) could not be stored", len(batch))

    @staticmethod
    def _apply(session, change: dict[str, Any]) -> None:
        if "finished_at" not in change:
            session.add(
                RunRow(
                    id=change["id"],
                    session_id=change["session"],
                    username=change["user"],
                    kind=change["kind"],
                    state=change["state"],
                )
            )
            session.flush()
            return
        session.execute(
            update(RunRow)
            .where(RunRow.id == change["id"])
            .values(
                state=change["state"],
                error=change["error"],
                statement_id=change["statement_id"],
                finished_at=change["finished_at"],
            )
        )
        session.execute(
            update(SessionRow)
            .where(SessionRow.id == change["session"])
            .values(last_used=change["finished_at"])
        )

    def close(self) -> None:
        """Store the runs still waiting, then stop the writer."""
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
