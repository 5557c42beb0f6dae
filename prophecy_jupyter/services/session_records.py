"""What the session service writes down, so a restarted server finds its remote sessions again."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import select, update

from prophecy_jupyter.store.database import Database
from prophecy_jupyter.store.models import RunRow, SessionRow, utcnow

if TYPE_CHECKING:
    from prophecy_jupyter.services.runs import Run
    from prophecy_jupyter.services.sessions import ManagedSession

LIVE, ENDED = "live", "ended"


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


class StoreSessionRecords:
    """Sessions and runs in the store."""

    def __init__(self, db: Database):
        self.db = db

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
        with self.db.transaction() as session:
            session.add(
                RunRow(
                    id=run.id,
                    session_id=run.session.id,
                    username=run.session.user,
                    kind=run.kind,
                    state=run.state,
                )
            )

    def run_finished(self, run: Run) -> None:
        error = run.result.error_summary() if run.result is not None and not run.result.ok else None
        statement = getattr(run, "statement_id", None)
        with self.db.transaction() as session:
            session.execute(
                update(RunRow)
                .where(RunRow.id == run.id)
                .values(state=run.state, error=error, statement_id=statement, finished_at=utcnow())
            )
            session.execute(
                update(SessionRow).where(SessionRow.id == run.session.id).values(last_used=utcnow())
            )

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
