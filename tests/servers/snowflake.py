"""A Snowflake stand-in: fakesnow's server (DuckDB behind Snowflake's HTTP protocol) with a thin front
of ours for what fakesnow does not do. fakesnow logs anyone in and takes any role or warehouse; the
front checks each login the way Snowflake does (a user's password, OAuth or programmatic access
token, or a key-pair JWT signed with the key registered for the user) and refuses others with
Snowflake's own answer (code 390100), and answers ``USE ROLE`` of a role not granted to the user
(003013) and ``USE WAREHOUSE`` of one that does not exist (002043) as Snowflake does, and ``SHOW
WAREHOUSES LIKE`` with each warehouse's state and AUTO_RESUME. fakesnow runs every query at once
and cannot cancel one; the front holds a query marked ``/* hold */`` until the session cancels its
queries (``SYSTEM$CANCEL_ALL_QUERIES``, as Snowpark's ``cancel_all`` does, or
``SYSTEM$CANCEL_QUERY``), then answers it as Snowflake answers a cancelled query (000604).
Submitted asynchronously, a held query is answered at once with its id, and its status
(``/monitoring/queries/{id}``) is QUEUED for its first ``QUEUED_SECONDS``, then RUNNING, until
``SYSTEM$CANCEL_QUERY`` names it (or the session's queries are cancelled): then it failed with
000604, as Snowflake reports a cancelled query. fakesnow reads every ``FIXED`` binding as an
integer (and fails on ``1.25``, which Snowflake takes); the front passes such a value as text,
which fakesnow's DuckDB compares and casts as Snowflake does the number. The front answers
``CREATE OR REPLACE PROCEDURE|TASK`` and ``ALTER TASK`` as Snowflake does and keeps them
(``Accounts.scheduled``): fakesnow runs none of them. fakesnow answers a NULL timestamp as
1970-01-01; the server gives it back as NULL (``fakesnow_server``). A query marked
``/* drop */`` loses its connection once: the front runs it, then closes the connection without
answering. The connector sends it again with the same ``requestId``, and the front answers with the
first run's answer without running it again, as Snowflake does with a retried request. Everything
else passes through unchanged.

Use it from the real connector or Snowpark: ``host=127.0.0.1, port=front.port, protocol=http``.
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import gzip
import json
import re
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import requests

HOLD_SECONDS = 60.0
QUEUED_SECONDS = 1.0
REFUSED = {
    "data": {"nextAction": "RETRY_LOGIN", "authnMethod": "USERNAME_PASSWORD"},
    "code": "390100",
    "message": "Incorrect username or password was specified.",
    "success": False,
    "headers": None,
}


@dataclass
class Accounts:
    """Who may log in, and with what."""

    passwords: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    public_keys: dict[str, Any] = field(default_factory=dict)
    roles: dict[str, set[str]] = field(default_factory=dict)
    warehouses: set[str] = field(default_factory=set)
    suspended: dict[str, bool] = field(default_factory=dict)
    """Warehouses that are suspended, and whether each resumes by itself (AUTO_RESUME); the
    others are started."""
    logins: list[dict[str, Any]] = field(default_factory=list)
    held: dict[str, list[threading.Event]] = field(default_factory=dict)
    """Per session token, the held queries' cancel events."""
    cancels: list[str] = field(default_factory=list)
    """The cancel statements the front answered."""
    held_async: dict[str, tuple[str, float, threading.Event]] = field(default_factory=dict)
    """Per query id, the held asynchronous queries: session token, when submitted, cancel event."""
    status_checks: list[str] = field(default_factory=list)
    """The statuses the front reported for held asynchronous queries, in order."""
    dropped: dict[str, tuple[int, bytes, str | None]] = field(default_factory=dict)
    """Per requestId, the queries whose connection the front dropped, and the answer it kept."""
    replayed: list[str] = field(default_factory=list)
    """The requestIds sent again after a drop, answered with the first run's answer."""
    scheduled: list[str] = field(default_factory=list)
    """The procedure and task statements the front answered (fakesnow runs none of them), in order."""
    tasks: TaskRuns = field(default_factory=lambda: TaskRuns())

    def hold(self, token: str) -> threading.Event:
        cancelled = threading.Event()
        self.held.setdefault(token, []).append(cancelled)
        return cancelled

    def cancel_held(self, token: str, sql: str) -> None:
        self.cancels.append(sql)
        named = re.search(r"CANCEL_QUERY\s*\(\s*'([^']+)'", sql, re.I)
        if named and named.group(1) in self.held_async:
            self.held_async[named.group(1)][2].set()
            return
        for cancelled in self.held.pop(token, []):
            cancelled.set()
        for owner, _, cancelled in self.held_async.values():
            if owner == token:
                cancelled.set()

    def held_status(self, query_id: str) -> dict[str, Any]:
        """The status answer for a held asynchronous query."""
        _, submitted, cancelled = self.held_async[query_id]
        waited = time.monotonic() - submitted
        if cancelled.is_set():
            query = {"id": query_id, "status": "FAILED_WITH_ERROR", "errorCode": "000604"}
            query["errorMessage"] = "SQL execution canceled"
        elif waited > HOLD_SECONDS:
            query = {"id": query_id, "status": "SUCCESS"}
        else:
            query = {"id": query_id, "status": "QUEUED" if waited < QUEUED_SECONDS else "RUNNING"}
        self.status_checks.append(query["status"])
        return {"data": {"queries": [query], "sqlState": "57014"}, "success": True, "message": None}

    def show_warehouses(self, pattern: str) -> str:
        """A query whose rows are ``SHOW WAREHOUSES LIKE pattern``'s (name, state, auto_resume)."""
        like = re.escape(pattern.upper()).replace("%", ".*").replace("_", ".")
        rows = []
        for name in sorted(w.upper() for w in self.warehouses):
            state = "SUSPENDED" if name in self.suspended else "STARTED"
            resumes = str(self.suspended.get(name, True)).lower()
            if re.fullmatch(like, name):
                columns = f"'{name}' AS \"name\", '{state}' AS \"state\", '{resumes}' AS \"auto_resume\""
                rows.append(f"SELECT {columns}")
        empty = "SELECT 'x' AS \"name\", 'x' AS \"state\", 'x' AS \"auto_resume\" WHERE 1 = 0"
        return " UNION ALL ".join(rows) or empty

    def accepts(self, data: dict[str, Any]) -> bool:
        user = str(data.get("LOGIN_NAME") or "")
        authenticator = str(data.get("AUTHENTICATOR") or "SNOWFLAKE").upper()
        self.logins.append({"user": user, "authenticator": authenticator})
        if authenticator == "SNOWFLAKE":
            return user in self.passwords and data.get("PASSWORD") == self.passwords[user]
        if authenticator in ("OAUTH", "PROGRAMMATIC_ACCESS_TOKEN"):
            return user in self.tokens and data.get("TOKEN") == self.tokens[user]
        if authenticator == "SNOWFLAKE_JWT":
            token = str(data.get("TOKEN") or "")
            return user in self.public_keys and _valid_jwt(token, self.public_keys[user])
        return False

    def refusal(self, user: str, sql: str) -> dict[str, Any] | None:
        """Snowflake's error for a ``USE`` of a role not granted or a warehouse that is not there."""
        used = re.fullmatch(r"\s*USE\s+(ROLE|WAREHOUSE)\s+(\S+)\s*;?\s*", sql, re.I)
        if used is None:
            return None
        what, name = used.group(1).upper(), used.group(2).strip('"').upper()
        if what == "ROLE" and name not in {r.upper() for r in self.roles.get(user, set())}:
            return _error(
                "003013",
                "42501",
                f"SQL access control error:\nRequested role '{name}' is not assigned to the executing user. "
                "Specify another role to activate.",
            )
        if what == "WAREHOUSE" and name not in {w.upper() for w in self.warehouses}:
            message = "SQL compilation error:\nObject does not exist, or operation cannot be performed."
            return _error("002043", "02000", message)
        return None


def _error(code: str, state: str, message: str) -> dict[str, Any]:
    data = {"internalError": False, "errorCode": code, "sqlState": state, "queryId": str(uuid.uuid4())}
    return {"data": data, "code": code, "message": message, "success": False, "headers": None}


def _scheduling_answer(sql: str) -> str | None:
    """Snowflake's answer to creating a procedure or a task, or to altering a task (None: the
    statement is none of those)."""
    created = re.match(r"\s*CREATE\s+OR\s+REPLACE\s+(PROCEDURE|TASK)\s+([A-Za-z0-9_$.]+)", sql, re.I)
    if created:
        what = "Function" if created.group(1).upper() == "PROCEDURE" else "Task"
        return f"{what} {created.group(2).upper()} successfully created."
    if re.match(r"\s*ALTER\s+TASK\s", sql, re.I):
        return "Statement executed successfully."
    dropped = re.match(r"\s*DROP\s+(PROCEDURE|TASK)\s+IF\s+EXISTS\s+([A-Za-z0-9_$.]+)", sql, re.I)
    if dropped:
        return f"{dropped.group(2).upper()} successfully dropped."
    executed = re.match(r"\s*EXECUTE\s+TASK\s+([A-Za-z0-9_$.]+)", sql, re.I)
    if executed:
        return f"Task {executed.group(1).upper()} is scheduled to run immediately."
    if re.match(r"\s*SELECT\s+SYSTEM\$USER_TASK_CANCEL_ONGOING_EXECUTIONS\('\w+'\)\s*$", sql, re.I):
        return "Cancelled the ongoing executions."
    return None


@dataclass
class TaskRuns:
    """The stand-in's task runner: ``EXECUTE TASK`` runs the task's ``CALL`` of a Python
    procedure as Snowflake would, the procedure's code from its ``CREATE PROCEDURE`` with a
    Snowpark session of the task's owner; ``TASK_HISTORY`` reads the runs. A run's state and its
    completion time change together: ``TASK_HISTORY`` never shows an ended run without its time."""

    runs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    changing: threading.Lock = field(default_factory=threading.Lock)

    def execute(self, task: str, scheduled: list[str], connect: dict[str, Any]) -> None:
        run = {"RUN_ID": str(uuid.uuid4().int % 10**12), "STATE": "EXECUTING", "ERROR_MESSAGE": None}
        run.update(SCHEDULED_TIME=_now(), COMPLETED_TIME=None, RETURN_VALUE=None)
        with self.changing:
            self.runs.setdefault(task, []).append(run)
        threading.Thread(target=self._run, args=(run, task, list(scheduled), connect), daemon=True).start()

    def _run(self, run: dict[str, Any], task: str, scheduled: list[str], connect: dict[str, Any]) -> None:
        import sqlglot
        from snowflake.snowpark import Session

        try:
            created = [s for s in scheduled if re.match(rf"\s*CREATE OR REPLACE TASK {task}\b", s, re.I)][-1]
            procedure, arguments = re.search(r"CALL\s+(\w+)\((.*)\)\s*$", created, re.S).groups()
            values = {}
            if arguments.strip():
                call = sqlglot.parse_one(f"SELECT F({arguments})", read="snowflake").expressions[0]
                values = {kwarg.this.name.upper(): kwarg.expression.to_py() for kwarg in call.expressions}
            source = [s for s in scheduled if re.match(rf"\s*CREATE OR REPLACE PROCEDURE {procedure}\(", s)][
                -1
            ]
            declared = sqlglot.parse_one(
                source.split("\n", 1)[0] + " AS 'x'", read="snowflake"
            ).this.expressions
            body = source.split("AS $$\n", 1)[1].rsplit("\n$$", 1)[0]
            namespace: dict[str, Any] = {"__name__": f"procedure_{procedure}"}
            exec(compile(body, f"<procedure {procedure}>", "exec"), namespace)
            session = Session.builder.configs(connect).create()
            try:
                positional = [values.get(d.name.upper(), _default(d)) for d in declared]
                self._end(run, STATE="SUCCEEDED", RETURN_VALUE=str(namespace["main"](session, *positional)))
            finally:  # fakesnow's server refuses the close, which leaves the connection open for
                # Snowpark's exit handler to close again, against a server stopped by then
                with contextlib.suppress(Exception):
                    session.close()
                atexit.unregister(session._close_at_exit)
        except Exception as exc:
            self._end(run, STATE="FAILED", ERROR_MESSAGE=f"{type(exc).__name__}: {exc}")

    def _end(self, run: dict[str, Any], **ended: str) -> None:
        """Ends ``run`` with ``ended`` and its completion time, unless it has ended already."""
        with self.changing:
            if run["STATE"] == "EXECUTING":
                run.update(ended, COMPLETED_TIME=_now())

    def cancel(self, task: str) -> None:
        """``SYSTEM$USER_TASK_CANCEL_ONGOING_EXECUTIONS``: the task's executing runs end cancelled."""
        with self.changing:
            going = list(self.runs.get(task.upper(), []))
        for run in going:
            self._end(run, STATE="CANCELLED", ERROR_MESSAGE="Task execution cancelled.")

    def history(self, task: str) -> str:
        """A query whose rows are ``TASK_HISTORY(TASK_NAME => task)``'s, for the front's rewrite."""
        names = ("RUN_ID", "STATE", "SCHEDULED_TIME", "COMPLETED_TIME", "ERROR_MESSAGE", "RETURN_VALUE")
        with self.changing:
            rows = [
                "SELECT " + ", ".join(f"{_sql_value(run[name], name)} AS {name}" for name in names)
                for run in self.runs.get(task.upper(), [])
            ]
        empty = (
            "SELECT " + ", ".join(f"{_sql_value(None, name)} AS {name}" for name in names) + " WHERE 1 = 0"
        )
        return "(" + (" UNION ALL ".join(rows) or empty) + ")"


def _now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())


def _default(column: Any) -> Any:
    from sqlglot import exp

    found = column.find(exp.DefaultColumnConstraint)
    return found.this.to_py() if found is not None else None


def _sql_value(value: Any, name: str) -> str:
    if name.endswith("_TIME"):
        return "CAST(NULL AS TIMESTAMP)" if value is None else f"TIMESTAMP '{value}'"
    if value is None:
        return "NULL::VARCHAR"
    return "'" + str(value).replace("'", "''") + "'"


def _fractional_fixed(bindings: dict[str, Any]) -> bool:
    """Whether a binding is a NUMBER with a fraction (``FIXED`` ``1.25``)."""
    return any(
        b.get("type") == "FIXED"
        and isinstance(b.get("value"), str)
        and not re.fullmatch(r"-?\d+", b["value"])
        for b in bindings.values()
    )


def _valid_jwt(token: str, public_key: Any) -> bool:
    import jwt

    try:
        jwt.decode(token, public_key, algorithms=["RS256"], options={"verify_aud": False})
    except jwt.PyJWTError:
        return False
    return True


class _Front(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    upstream: str
    accounts: Accounts
    users: dict[str, str]  # session token → user

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        held = re.fullmatch(r"/monitoring/queries/([^/?]+)", self.path)
        if held and held.group(1) in self.accounts.held_async:
            self._answer(200, json.dumps(self.accounts.held_status(held.group(1))).encode())
            return
        self._forward(b"")

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        raw = gzip.decompress(body) if self.headers.get("Content-Encoding") == "gzip" else body
        if self.path.startswith("/session/v1/login-request"):
            data = json.loads(raw).get("data") or {}
            if not self.accounts.accepts(data):
                self._answer(200, json.dumps(REFUSED).encode())
                return
            answer = self._forward(body)
            token = ((answer or {}).get("data") or {}).get("token")
            if token:
                self.users[token] = str(data.get("LOGIN_NAME"))
            return
        if self.path.startswith("/queries/v1/query-request"):
            token, payload = self._session_token(), json.loads(raw)
            sql = str(payload.get("sqlText") or "")
            request_id = (parse_qs(urlparse(self.path).query).get("requestId") or [""])[0]
            if request_id in self.accounts.dropped:
                self.accounts.replayed.append(request_id)
                self._answer(*self.accounts.dropped[request_id])
                return
            if "/* drop */" in sql and request_id:
                answer = self._upstream(body)  # it runs; the client never hears of it
                kept = (answer.status_code, answer.content, answer.headers.get("Content-Type"))
                self.accounts.dropped[request_id] = kept
                self.close_connection = True
                return
            refusal = self.accounts.refusal(self.users.get(token, ""), sql)
            if refusal is not None:
                self._answer(200, json.dumps(refusal).encode())
                return
            shown = re.fullmatch(r"\s*SHOW\s+WAREHOUSES\s+LIKE\s+'([^']*)'\s*;?\s*", sql, re.I)
            answer = _scheduling_answer(sql)
            history = re.search(
                r"TABLE\(INFORMATION_SCHEMA\.TASK_HISTORY\(TASK_NAME => '(\w+)'[^)]*\)\)", sql
            )
            if answer is not None:
                self.accounts.scheduled.append(sql)
                executed = re.match(r"\s*EXECUTE\s+TASK\s+(\w+)", sql, re.I)
                if executed:
                    self._execute_task(executed.group(1).upper(), token)
                cancelled = re.search(r"CANCEL_ONGOING_EXECUTIONS\('(\w+)'\)", sql)
                if cancelled:
                    self.accounts.tasks.cancel(cancelled.group(1))
                body = self._rewritten({**payload, "sqlText": f"SELECT '{answer}' AS \"status\""})
            elif history:
                rows = self.accounts.tasks.history(history.group(1))
                body = self._rewritten({**payload, "sqlText": sql.replace(history.group(0), rows)})
            elif shown:
                body = self._rewritten({**payload, "sqlText": self.accounts.show_warehouses(shown.group(1))})
            elif re.search(r"SYSTEM\$CANCEL_(ALL_QUERIES|QUERY)\b", sql, re.I):
                self.accounts.cancel_held(token, sql)
                body = self._rewritten({**payload, "sqlText": "SELECT 'canceled' AS STATUS"})
            elif "/* hold */" in sql and payload.get("asyncExec"):
                answer = self._upstream(body)  # fakesnow runs it now; its status will say otherwise
                with contextlib.suppress(ValueError):
                    query_id = (answer.json().get("data") or {}).get("queryId")
                    if query_id:
                        self.accounts.held_async[query_id] = (token, time.monotonic(), threading.Event())
                self._answer(answer.status_code, answer.content, answer.headers.get("Content-Type"))
                return
            elif "/* hold */" in sql and self.accounts.hold(token).wait(HOLD_SECONDS):
                self._answer(200, json.dumps(_error("000604", "57014", "SQL execution canceled")).encode())
                return
            elif _fractional_fixed(payload.get("bindings") or {}):
                bindings = {
                    position: {**value, "type": "TEXT"} if _fractional_fixed({position: value}) else value
                    for position, value in payload["bindings"].items()
                }
                body = self._rewritten({**payload, "bindings": bindings})
        self._forward(body)

    def _execute_task(self, task: str, token: str) -> None:
        """Run the task as its owner: the user of the session that asked (with their password)."""
        user = self.users.get(token, "")
        connect = {"account": "fakesnow", "host": "127.0.0.1", "port": self.server.server_port}
        connect.update(protocol="http", user=user, password=self.accounts.passwords.get(user, ""))
        self.accounts.tasks.execute(task, self.accounts.scheduled, connect)

    def _rewritten(self, payload: dict[str, Any]) -> bytes:
        """A request body with other content, encoded as the request's came."""
        raw = json.dumps(payload).encode()
        return gzip.compress(raw) if self.headers.get("Content-Encoding") == "gzip" else raw

    def _session_token(self) -> str:
        found = re.search(r'Token="([^"]*)"', self.headers.get("Authorization") or "")
        return found.group(1) if found else ""

    def _upstream(self, body: bytes) -> requests.Response:
        """fakesnow's answer to the request (with ``body``)."""
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
        return requests.request(
            self.command, self.upstream + self.path, data=body, headers=headers, timeout=120
        )

    def _forward(self, body: bytes) -> dict[str, Any] | None:
        """Pass the request to fakesnow and its answer back; the answer's JSON, if it is JSON."""
        answer = self._upstream(body)
        self._answer(answer.status_code, answer.content, answer.headers.get("Content-Type"))
        with contextlib.suppress(ValueError):
            return answer.json()
        return None

    def _answer(self, status: int, content: bytes, content_type: str | None = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type or "application/json")
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)


@dataclass
class SnowflakeStandIn:
    port: int
    accounts: Accounts

    def connect_args(self, **more: Any) -> dict[str, Any]:
        """What the connector needs to reach the stand-in (credentials not included)."""
        return {"account": "fakesnow", "host": "127.0.0.1", "port": self.port, "protocol": "http", **more}


ASYNC_ANSWER = "Asynchronous execution in progress. Use provided query id to perform query monitoring."


_ANSWERING_ASYNC: contextvars.ContextVar[bool] = contextvars.ContextVar("answering_async", default=False)


def _as_snowflake_answers(to_sf: Any) -> Any:
    """fakesnow's conversion of a result for its answer, made to answer as Snowflake does: no rows
    converted for an answer that carries none (an asynchronous query's: its rows are read later,
    from fakesnow's results cache, by ``RESULT_SCAN``), and a NULL timestamp left NULL (fakesnow
    makes it 1970-01-01: its timestamp structs have no validity)."""
    import pyarrow as pa

    def convert(table: pa.Table, rowtype: Any) -> pa.Table:
        table = table.slice(0, 0) if _ANSWERING_ASYNC.get() else table
        converted = to_sf(table, rowtype)
        columns = list(converted.columns)
        for i, column in enumerate(table.columns):
            if pa.types.is_timestamp(column.type) and column.null_count:
                struct = converted.column(i).combine_chunks()
                children = [struct.field(j).fill_null(0) for j in range(struct.type.num_fields)]
                nulls = column.combine_chunks().is_null()
                columns[i] = pa.StructArray.from_arrays(children, fields=list(struct.type), mask=nulls)
        return pa.Table.from_arrays(columns, schema=converted.schema)

    convert.as_snowflake_answers = True
    return convert


class _AsyncAnswers:
    """fakesnow runs a query submitted asynchronously (``asyncExec``) at once and answers with its
    rows; Snowflake answers with the query's id only (code 333334), and the rows are fetched once
    the query is done. This ASGI wrapper answers as Snowflake does, without making the rows into
    an answer it drops; everything else is fakesnow's."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != "/queries/v1/query-request":
            await self.app(scope, receive, send)
            return
        chunks, more = [], True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        gzipped = (b"content-encoding", b"gzip") in [(k.lower(), v) for k, v in scope["headers"]]
        asynchronous = json.loads(gzip.decompress(body) if gzipped else body).get("asyncExec")

        async def replay() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        if not asynchronous:
            await self.app(scope, replay, send)
            return
        answer: list[dict[str, Any]] = []

        async def keep(message: dict[str, Any]) -> None:
            answer.append(message)

        answering = _ANSWERING_ASYNC.set(True)
        try:
            await self.app(scope, replay, keep)
        finally:
            _ANSWERING_ASYNC.reset(answering)
        content = b"".join(m.get("body", b"") for m in answer[1:])
        found = re.search(rb'"queryId":\s*"([^"]+)"', content)
        if re.search(rb'"success":\s*true', content) and found:
            query_id = found.group(1).decode()
            data = {"queryId": query_id, "getResultUrl": f"/queries/{query_id}/result"}
            content = json.dumps(
                {"data": data, "code": "333334", "message": ASYNC_ANSWER, "success": True}
            ).encode()
        await self._send(send, answer[0]["status"], content)

    @staticmethod
    async def _send(send: Any, status: int, content: bytes) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(content)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})


@contextlib.contextmanager
def fakesnow_server() -> Iterator[str]:
    """fakesnow's server app under uvicorn on 127.0.0.1, as ``fakesnow.server()`` runs it (which
    can be called once per process: it shadows itself with its own module), answering
    asynchronous queries as Snowflake does (:class:`_AsyncAnswers`); yields its URL."""
    import fakesnow.server
    import uvicorn
    from fakesnow.server import app
    from fakesnow.transforms import stage

    # fakesnow makes its stages' folder as it is imported, and never removes it.
    atexit.register(shutil.rmtree, stage.LOCAL_BUCKET_PATH, True)
    if not getattr(fakesnow.server.to_sf, "as_snowflake_answers", False):
        fakesnow.server.to_sf = _as_snowflake_answers(fakesnow.server.to_sf)

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(_AsyncAnswers(app), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="fakesnow", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while thread.is_alive() and not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    if not server.started:
        raise RuntimeError("fakesnow's server did not start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


@contextlib.contextmanager
def snowflake_stand_in(accounts: Accounts | None = None) -> Iterator[SnowflakeStandIn]:
    """fakesnow's server behind our login-checking front, both on 127.0.0.1; stopped on exit."""
    accounts = accounts or Accounts()
    with fakesnow_server() as upstream_url:
        front = type("Front", (_Front,), {"upstream": upstream_url, "accounts": accounts, "users": {}})
        server = ThreadingHTTPServer(("127.0.0.1", 0), front)
        thread = threading.Thread(target=server.serve_forever, name="snowflake-front", daemon=True)
        thread.start()
        try:
            yield SnowflakeStandIn(server.server_port, accounts)
        finally:
            server.shutdown()
            server.server_close()
