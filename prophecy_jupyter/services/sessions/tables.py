"""Table runs: a remote DataFrame fetched as a header and chunks, each one statement sent when the
one before it is done (no thread waits for them); a SQL query run by an engine that runs SQL itself;
and the bounds a server sets on both (rows per table, bytes a user has waiting)."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence

from prophecy_jupyter.errors import LimitReached, NotFound
from prophecy_jupyter.results.model import Result, ResultKind, RunState
from prophecy_jupyter.results.transport import (
    TableAssembler,
    TablePayload,
    chunk_code,
    parse_first_output,
)
from prophecy_jupyter.services.sessions.ledger import Ledger
from prophecy_jupyter.services.sessions.model import ManagedSession, Run, StatementRun, StepsRun, TableRun
from prophecy_jupyter.services.sessions.registry import Registry
from prophecy_jupyter.services.sessions.statements import Statements
from prophecy_jupyter.services.settings import ServiceSettings
from prophecy_jupyter.sql_parameters import SqlParameter

log = logging.getLogger(__name__)

Then = Callable[[StepsRun, StatementRun], None]
"""What a run of steps does with a statement of it that succeeded."""


class Tables:
    def __init__(self, registry: Registry, ledger: Ledger, statements: Statements, settings: ServiceSettings):
        self.registry = registry
        self.ledger = ledger
        self.statements = statements
        self.settings = settings

    def fetch(self, managed: ManagedSession, source: str, limit: int, prefer_arrow: bool) -> TableRun:
        """Start fetching the DataFrame ``source`` evaluates to; returns at once with the run."""
        run = self._table_run(managed, source, limit)
        self.ledger.track(run)
        key = uuid.uuid4().hex
        fetch_code = managed.engine.tables.fetch_code
        code = fetch_code(source, run.limit, key, prefer_arrow, self.settings.chunk_chars)
        self.step(run, code, lambda run, first: self._first(run, first, key))
        return run

    def query(
        self, managed: ManagedSession, query: str, limit: int, parameters: Sequence[SqlParameter]
    ) -> TableRun:
        """Start a SQL query on an engine that runs SQL itself; returns at once with the run."""
        run = self._table_run(managed, query, limit)
        self.ledger.track(run)
        self.step(run, query, self._queried, "sql", (tuple(parameters), run.limit))
        return run

    def _table_run(self, managed: ManagedSession, source: str, limit: int) -> TableRun:
        """A table run within this service's bounds: rows per table, and bytes a user has waiting."""
        budget = self.settings.max_buffered_bytes
        if budget:
            waiting = self.buffered_bytes(managed.user)
            if waiting >= budget:
                raise LimitReached(
                    f"You have {waiting / 2**20:,.0f} MiB of table results waiting on the server, the most "
                    f"allowed ({budget / 2**20:,.0f} MiB): fetch or cancel them, or wait a minute."
                )
        cap, note = self.settings.max_table_rows, None
        if cap and (limit < 0 or limit > cap):
            limit = cap
            note = (
                f"The server keeps at most {cap:,} rows of a table (c.ProphecyJupyter.max_table_rows): "
                f"you get the first {cap:,}."
            )
        run = TableRun(managed, source, limit)
        if note:
            run.note(note)
        return run

    def buffered_bytes(self, user: str) -> int:
        """Bytes of the user's table results held here until they are fetched."""
        return sum(r.payload.size for r in self.registry.runs_of(user) if r.payload is not None)

    def data(self, run: Run) -> TablePayload:
        """A finished table run's data, for a client to fetch (kept a little longer, so that a
        retried fetch finds it)."""
        payload = run.payload
        if payload is None:
            raise NotFound(f"Run '{run.id}' has no table (not a finished run with a table).")
        if run.fetched_at is None:
            run.fetched_at = time.monotonic()
            self.registry.fetched(run)
        return payload

    # -- the statements of a table run, one after another ---------------------------------------

    def step(
        self,
        run: StepsRun,
        code: str,
        then: Then,
        language: str = "pyspark",
        query: tuple[Sequence[SqlParameter], int] | None = None,
    ) -> None:
        """Send the run's next statement; ``then`` takes it when it succeeds."""
        if run.cancel_requested:
            self.ledger.finish(
                run, RunState.CANCELLED, Result.of_error("Cancelled", f"The {run.what} was cancelled.")
            )
            return
        statement = StatementRun(run.session, code, language)
        statement.query = query
        run.current = statement
        run.state = RunState.RUNNING
        self.registry.add_run(statement)
        statement.add_done_callback(lambda: self._after(run, statement, then))
        self.statements.send_soon(statement)

    def _after(self, run: StepsRun, statement: StatementRun, then: Then) -> None:
        for note in statement.notes:
            run.note(note)
        if statement.state != RunState.FINISHED:
            state = RunState.CANCELLED if run.cancel_requested else statement.state
            self.ledger.finish(run, state, statement.result)
            return
        try:
            then(run, statement)
        except Exception as exc:  # a driver that answered with something else than a table
            log.warning("%s run %s failed: %s", run.kind, run.id, exc)
            self.ledger.finish(run, RunState.FAILED, Result.of_error(type(exc).__name__, str(exc)))
        statement.result = None  # its text is in the table now (the statement stays findable a while)

    def _first(self, run: TableRun, first: StatementRun, key: str) -> None:
        """The first statement brings the header and first chunk; the rest follow one by one."""
        header, chunk = parse_first_output(first.result.text)
        assembler = TableAssembler(header)
        assembler.add(chunk)
        self._next_chunk(run, assembler, key, 1)

    def _next_chunk(self, run: TableRun, assembler: TableAssembler, key: str, index: int) -> None:
        header = assembler.header
        if index >= header.chunks:
            run.payload = assembler.payload(run.limit)
            result = Result(ResultKind.TABLE, truncated=header.truncated, row_limit=run.limit)
            self.ledger.finish(run, RunState.FINISHED, result)
            return

        def take(run: TableRun, part: StatementRun) -> None:
            assembler.add(part.result.text)
            self._next_chunk(run, assembler, key, index + 1)

        self.step(run, chunk_code(key, index, last=index == header.chunks - 1), take)

    def _queried(self, run: TableRun, statement: StatementRun) -> None:
        run.payload, statement.payload = statement.payload, None
        self.ledger.finish(run, RunState.FINISHED, statement.result)
