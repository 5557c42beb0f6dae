"""The session service: one object the servers, the kernel and the command line talk to, wiring
the parts of this package together (see the package's docstring for what each part does)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prophecy_jupyter.engines.base import Engine, RunsSql, SessionSpec
from prophecy_jupyter.results.model import Result
from prophecy_jupyter.results.transport import TablePayload
from prophecy_jupyter.services.fabrics import Fabric
from prophecy_jupyter.services.sessions import recovery
from prophecy_jupyter.services.sessions.directory import Directory, EngineSource, FabricSource
from prophecy_jupyter.services.sessions.ledger import Ledger
from prophecy_jupyter.services.sessions.lifecycle import Lifecycle
from prophecy_jupyter.services.sessions.model import (
    ManagedSession,
    Notify,
    Run,
    StatementRun,
    TableRun,
    Waiter,
    quiet,
    table_result,
    wait_for,
)
from prophecy_jupyter.services.sessions.records import NoRecords, SessionRecords
from prophecy_jupyter.services.sessions.registry import Registry
from prophecy_jupyter.services.sessions.scheduler import Scheduler
from prophecy_jupyter.services.sessions.sends import SendRun, Sends
from prophecy_jupyter.services.sessions.statements import Statements
from prophecy_jupyter.services.sessions.tables import Tables
from prophecy_jupyter.services.sessions.upkeep import Upkeep
from prophecy_jupyter.services.settings import ServiceSettings
from prophecy_jupyter.sql_parameters import SqlParameter


class SessionService:
    """Sessions and runs for every user and notebook of this process or Jupyter server."""

    def __init__(
        self,
        fabrics: FabricSource,
        engines: EngineSource,
        settings: ServiceSettings | None = None,
        records: SessionRecords | None = None,
    ):
        self.settings = settings or ServiceSettings()
        self.records = records or NoRecords()
        self._directory = Directory(fabrics, engines, self.settings)
        self._registry = Registry()
        self._scheduler = Scheduler(self.settings.workers)
        ledger = Ledger(self._registry, self.records, self.settings)
        self._lifecycle = Lifecycle(self._directory, self._registry, ledger, self._scheduler, self.settings)
        self._statements = Statements(self._scheduler, ledger, self._lifecycle, self.settings)
        self._tables = Tables(self._registry, ledger, self._statements, self.settings)
        self._sends = Sends(ledger, self._tables, self.settings)
        upkeep = Upkeep(self._registry, ledger, self._lifecycle, self._scheduler, self.settings)
        self._scheduler.start(upkeep.tick, self.settings.tick_interval)

    # -- fabrics and sessions ---------------------------------------------------------------------

    def fabric(self, user: str, ref: str) -> Fabric:
        """The fabric a user means (looked up again every few seconds)."""
        return self._directory.fabric(user, ref)

    def engine_for(self, user: str, fabric: Fabric) -> Engine:
        """The engine the user's cells on the fabric use (built with their own secret)."""
        return self._directory.engine(user, fabric)

    def secret_changed(self, scope: str) -> None:
        """A credential changed in this process: look secrets up again before the next run."""
        self._directory.secret_changed(scope)

    def spec_for(self, user: str, notebook: str, fabric: Fabric) -> SessionSpec:
        """Fabric defaults, then the job size, then the notebook's own settings."""
        return self._directory.spec_for(user, notebook, fabric)

    def managed(self, user: str, notebook: str, fabric_ref: str) -> ManagedSession:
        """The notebook's session record on the fabric (created, not started, if new)."""
        return self._lifecycle.managed(user, notebook, fabric_ref)

    def session(self, user: str, notebook: str, fabric_ref: str, notify: Notify = quiet) -> ManagedSession:
        """The notebook's live session on the fabric, opened and waited for if needed."""
        return self._lifecycle.session(user, notebook, fabric_ref, notify)

    def start_in_background(self, user: str, notebook: str, fabric_ref: str) -> ManagedSession:
        """Start the notebook's session without waiting, so the first cell finds it ready."""
        return self._lifecycle.start_in_background(user, notebook, fabric_ref)

    def configure(
        self, user: str, notebook: str, fabric_ref: str, settings: dict[str, Any], notify: Notify = quiet
    ) -> bool:
        """Set the notebook's session settings; restart a live session that differs. True if restarted."""
        return self._lifecycle.configure(user, notebook, fabric_ref, settings, notify)

    def restart(self, managed: ManagedSession, notify: Notify = quiet) -> ManagedSession:
        """Stop the session and start a new one for the same notebook and fabric."""
        return self._lifecycle.restart(managed, notify)

    def refresh(self, managed: ManagedSession) -> ManagedSession:
        """Ask the fabric how the session is now."""
        return self._lifecycle.refresh(managed)

    def logs(self, managed: ManagedSession, size: int = 100) -> list[str]:
        """The last ``size`` lines of the session's log on the fabric."""
        return self._lifecycle.logs(managed, size)

    def complete(self, user: str, notebook: str, fabric_ref: str, code: str, cursor: int) -> list[str]:
        """Completions from the remote interpreter (empty when the session is not up)."""
        return self._lifecycle.complete(user, notebook, fabric_ref, code, cursor)

    def close(self, user: str, notebook: str, fabric_ref: str | None = None) -> int:
        """Close the notebook's sessions (on one fabric, or all); returns how many were live."""
        return self._lifecycle.close(user, notebook, fabric_ref)

    def close_session(self, managed: ManagedSession) -> None:
        """Close one session and forget it."""
        self._lifecycle.close_session(managed)

    # -- runs -------------------------------------------------------------------------------------

    def submit(
        self,
        user: str,
        notebook: str,
        fabric_ref: str,
        code: str,
        language: str = "pyspark",
        notify: Notify = quiet,
    ) -> StatementRun:
        """Send code to the notebook's session; returns at once with the queued run."""
        return self._statements.submit(self.session(user, notebook, fabric_ref, notify), code, language)

    def submit_table(
        self,
        user: str,
        notebook: str,
        fabric_ref: str,
        source: str,
        limit: int,
        prefer_arrow: bool = True,
        notify: Notify = quiet,
    ) -> TableRun:
        """Fetch a remote DataFrame (``source`` evaluates to one there) as a table run."""
        return self._tables.fetch(
            self.session(user, notebook, fabric_ref, notify), source, limit, prefer_arrow
        )

    def submit_sql(
        self,
        user: str,
        notebook: str,
        fabric_ref: str,
        query: str,
        limit: int,
        parameters: Sequence[SqlParameter] = (),
        notify: Notify = quiet,
    ) -> TableRun:
        """A SQL query's result as a table run: from engines that run SQL themselves (warehouses)
        directly, from interpreters (Spark, Snowpark) as they run SQL."""
        managed = self.session(user, notebook, fabric_ref, notify)
        if isinstance(managed.engine, RunsSql):
            return self._tables.query(managed, query, limit, parameters)
        return self._tables.fetch(managed, managed.engine.tables.sql_source(query, parameters), limit, True)

    def submit_send(
        self,
        user: str,
        notebook: str,
        fabric_ref: str,
        data: bytes,
        name: str,
        *,
        key: str,
        part: int,
        last: bool,
        view: bool = False,
        notify: Notify = quiet,
    ) -> SendRun:
        """Send a part (Arrow IPC bytes) of the local table ``key``; the ``last`` part makes the
        DataFrame ``name`` on the fabric (and a temporary view of that name with ``view``)."""
        managed = self.session(user, notebook, fabric_ref, notify)
        return self._sends.send(managed, key, part, data, name, view, last)

    def cancel(self, run: Run) -> None:
        """Ask the fabric to cancel the run (through the statement's cancel endpoint)."""
        self._statements.cancel(run)

    def find_run(self, user: str, run_id: str) -> Run:
        """The user's run with this id (finished runs are kept for a while)."""
        return self._registry.run(user, run_id)

    def told(self, run: Run) -> None:
        """A client was told how ``run`` ended: it is kept only a little longer."""
        self._registry.told(run)

    def runs_held(self) -> int:
        """How many runs the service holds: running ones, and finished ones kept a while."""
        return self._registry.runs_held()

    def table_data(self, run: Run) -> TablePayload:
        """A finished table run's data, for a client to fetch."""
        return self._tables.data(run)

    def buffered_bytes(self, user: str) -> int:
        """Bytes of the user's table results held here until they are fetched."""
        return self._tables.buffered_bytes(user)

    # -- in-process conveniences ------------------------------------------------------------------

    def run(
        self,
        user: str,
        notebook: str,
        fabric_ref: str,
        code: str,
        language: str = "pyspark",
        waiter: Waiter = wait_for,
        notify: Notify = quiet,
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
        notify: Notify = quiet,
        prefer_arrow: bool = True,
    ) -> Result:
        """A remote DataFrame as a typed pandas table (at most ``limit`` rows; < 0 for all)."""
        run = self.submit_table(user, notebook, fabric_ref, source, limit, prefer_arrow, notify)
        return table_result(waiter(run))

    def fetch_sql(
        self,
        user: str,
        notebook: str,
        fabric_ref: str,
        query: str,
        limit: int,
        parameters: Sequence[SqlParameter] = (),
        waiter: Waiter = wait_for,
        notify: Notify = quiet,
    ) -> Result:
        """A SQL query's result as a typed pandas table (see :meth:`submit_sql`)."""
        run = self.submit_sql(user, notebook, fabric_ref, query, limit, parameters, notify)
        return table_result(waiter(run))

    # -- inspection, restart and shutdown ---------------------------------------------------------

    def sessions_of(self, user: str, notebook: str | None = None) -> list[ManagedSession]:
        """The user's sessions in this process (of one notebook, or all)."""
        return self._registry.of(user, notebook)

    def find_session(self, user: str, session_id: str) -> ManagedSession:
        """The user's session with this id."""
        return self._registry.by_id(user, session_id)

    def status(self, user: str, notebook: str | None = None, refresh: bool = True) -> list[dict[str, Any]]:
        """The user's sessions (of one notebook, or all): those held here, as the fabrics see
        them now (``refresh``) or as last seen, then the ones recorded as ended lately."""
        held = self.sessions_of(user, notebook)
        current = [(self.refresh(m) if refresh else m).describe() for m in held]
        known = {m.id for m in held}
        ended = recovery.ended_sessions(self.records, self._directory, user, notebook)
        return current + [s for s in ended if s["id"] not in known]

    def rehydrate(self) -> list[dict[str, Any]]:
        """After a restart: take back the recorded sessions still alive on their fabrics."""
        return recovery.rehydrate(self.records, self._directory, self._registry)

    def shutdown(self, close_sessions: bool = True) -> None:
        """Stop polling and close the engines; close every session unless they should outlive this
        process (a server that will rehydrate them)."""
        for managed in self._registry.take_all():
            if close_sessions:
                self._lifecycle.stop(managed, "stopped")
            elif managed.fabric.kind_of.ends_with_server:
                self._lifecycle.release(managed, "stopped with the server")
        self._scheduler.stop()
        self._directory.close()
        self.records.close()
