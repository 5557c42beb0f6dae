"""The interpreter process behind one ``snowpark`` gateway session: a Snowpark ``Session`` logged
in as the user, Python statements run with ``session`` bound (their state kept between
statements), SQL statements through the same connection.

Started by the gateway with ``python -m prophecy_jupyter.gateway.snowpark_interpreter``; the
connection's arguments, the user's secret among them, come in the start message over the
gateway's 0600 socket (never argv or the environment). While a SQL statement's query runs, its id
and state are the statement's progress; cancel asks Snowflake to cancel that query by its id (or,
in a Python cell, all of the session's running queries), then interrupts the statement's Python.
Under Snowpark's local testing (the connection is ``{"local_testing": true}``) the session is
Snowpark's emulator: DataFrames only, no SQL text, nothing remote to cancel.
"""

from __future__ import annotations

import base64
import functools
import os
import sys
import time
from typing import Any

from prophecy_jupyter.gateway.repl import error_output, ok_output
from prophecy_jupyter.gateway.statement_loop import (
    InterruptGuard,
    Statement,
    StatementLoop,
    begin_session,
    connect,
)
from prophecy_jupyter.results import snowpark_tables

CANCEL_GRACE = 5.0
"""Seconds a cancelled query has to end by Snowflake's own answer before the statement's Python
is interrupted."""


class SnowparkInterpreter(StatementLoop):
    """Statements on a Snowpark session."""

    def __init__(self, channel, session, sql_max_rows: int, emulated: bool = False):
        self.queries = snowpark_tables.QueryWatch()
        self.fetcher = snowpark_tables.fetch_emulated if emulated else snowpark_tables.fetch
        table = functools.partial(snowpark_tables.table_statement, watch=self.queries, fetcher=self.fetcher)
        super().__init__(channel, {"session": session, "__prophecy_snowpark_table": table}, InterruptGuard())
        self.session = session
        self.emulated = emulated
        self.sql_max_rows = sql_max_rows
        self.cancelled: dict[int, float] = {}
        """Statements whose cancel was asked, and when."""

    def execute_sql(self, query: str) -> dict[str, Any]:
        try:
            output = snowpark_tables.livy_sql_output(
                self.session, query, self.sql_max_rows, self.queries, self.fetcher
            )
            return ok_output(output)
        except KeyboardInterrupt:
            raise
        except Exception as exc:
            return error_output(exc, hide_frames_from=__file__)

    def detail(self, statement: Statement) -> str | None:
        return self.queries.describe()

    def stop_remote(self, statement: Statement) -> bool:
        """Cancel the statement's query by its id (all the session's queries when its id is not
        known: a Python cell's); while the query has not ended, Python is left to hear it."""
        if self.emulated:  # nothing remote: Python hears the interrupt
            return False
        query_id = self.queries.query_id
        if statement.id not in self.cancelled:
            self.cancelled[statement.id] = time.monotonic()
            if query_id is None:
                self.session.cancel_all()
            else:
                self.session.connection.cursor().execute(f"SELECT SYSTEM$CANCEL_QUERY('{query_id}')")
        return query_id is not None and time.monotonic() - self.cancelled[statement.id] < CANCEL_GRACE


def _preload() -> None:
    import pandas  # noqa: F401
    import snowflake.snowpark  # noqa: F401


def main() -> None:
    channel, start = connect(_preload)
    if start is None or start["op"] != "start":
        return
    session_id = begin_session(start)
    from snowflake.snowpark import Session

    connection = start.pop("connection")
    if isinstance(connection.get("private_key"), str):  # DER bytes travel in base64
        connection["private_key"] = base64.b64decode(connection["private_key"])
    try:
        session = Session.builder.configs(connection).create()
    except Exception as exc:
        channel.send({"op": "failed", "error": _login_failure(exc, connection)})
        sys.exit(1)
    emulated = bool(connection.get("local_testing"))
    channel.send({"op": "ready", "app_id": str(session.session_id), "spark_ui_url": None})
    where = "Snowpark local testing" if emulated else f"Snowflake session {session.session_id}"
    print(f"session {session_id} ready: {where}", flush=True)
    SnowparkInterpreter(channel, session, start["sql_max_rows"], emulated).serve()
    channel.close()
    sys.stdout.flush()
    os._exit(0)


def _login_failure(exc: Exception, connection: dict) -> str:
    """Why the login failed: whose login, how, and what Snowflake said (its error number and
    message; never a secret)."""
    errno, message = getattr(exc, "errno", None), getattr(exc, "msg", None) or str(exc)
    who = f"{connection.get('user')} (authenticator {connection.get('authenticator')})"
    said = f"{errno}: {message}" if errno else f"{type(exc).__name__}: {message}"
    return f"Snowflake refused the login of {who}: {said}"


if __name__ == "__main__":
    main()
