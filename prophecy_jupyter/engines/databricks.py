"""Databricks all-purpose clusters through the Command Execution API 1.2, on databricks-sdk.

A session is an execution context on the fabric's cluster; a statement is a command. The SDK's
waiters sleep seconds between checks, so the session service polls ``command_status`` itself.
Commands are sent at most once (see :meth:`Workspace.post_once`).
"""

from __future__ import annotations

import base64
import html
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from databricks.sdk.errors import DatabricksError, NotFound
from databricks.sdk.service.compute import CommandStatus, ContextStatus, Language, State

from prophecy_jupyter.engines.base import RemoteSession, SessionSpec, SessionState, StatementStatus
from prophecy_jupyter.engines.databricks_client import STATUS_POLLS, Workspace, WorkspaceConnection
from prophecy_jupyter.errors import EngineError, SessionGone, StatementLost
from prophecy_jupyter.results.model import Result, ResultKind, RunState
from prophecy_jupyter.results.transport import SPARK_TABLES, TableHeader, TablePayload

_LANGUAGES = {
    "pyspark": Language.PYTHON,
    "python": Language.PYTHON,
    "sql": Language.SQL,
    "scala": Language.SCALA,
    "spark": Language.SCALA,
    "r": Language.R,
    "sparkr": Language.R,
}
_COMMAND_STATES = {
    CommandStatus.QUEUED: RunState.QUEUED,
    CommandStatus.RUNNING: RunState.RUNNING,
    CommandStatus.CANCELLING: RunState.CANCELLING,
    CommandStatus.CANCELLED: RunState.CANCELLED,
    CommandStatus.ERROR: RunState.FAILED,
}
_USABLE = {State.RUNNING, State.RESIZING}
_COMING_UP = {State.PENDING, State.RESTARTING}
_OUT_PREFIX = re.compile(r"^Out\[\d+\]:\s?", re.MULTILINE)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_HTML = re.compile(r"^\s*<(!doctype|html|div|table|style|span|p|h[1-6])\b", re.IGNORECASE)


@dataclass(frozen=True)
class DatabricksConnection(WorkspaceConnection):
    """A workspace and the all-purpose cluster the fabric runs on."""

    cluster_id: str = ""


@dataclass(frozen=True)
class ClusterState:
    cluster_id: str
    name: str
    state: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {
            "cluster_id": self.cluster_id,
            "name": self.name,
            "state": self.state,
            "message": self.message,
        }


class DatabricksEngine:
    """One workspace client per user and fabric."""

    name = "databricks"
    poll_policy = STATUS_POLLS
    tables = SPARK_TABLES

    def __init__(self, connection: DatabricksConnection, secret: str | None, fabric_name: str):
        self.connection = connection
        self.fabric_name = fabric_name
        self.workspace = Workspace(connection, secret, fabric_name)
        self.client = self.workspace.client
        self._languages: dict[str, Language] = {}

    @property
    def supports_long_poll(self) -> bool:
        return False

    # -- clusters -----------------------------------------------------------------------------

    def cluster(self) -> ClusterState:
        """The fabric's cluster as the workspace sees it now."""
        found = self.workspace.call("read the cluster", self.client.clusters.get, self.connection.cluster_id)
        return ClusterState(
            found.cluster_id or self.connection.cluster_id,
            found.cluster_name or "",
            found.state.value if found.state else "UNKNOWN",
            found.state_message or "",
        )

    def clusters(self) -> list[ClusterState]:
        """Every cluster of the workspace the user can see (to pick one for a fabric)."""
        listed = self.workspace.call("list the clusters", lambda: list(self.client.clusters.list()))
        return [
            ClusterState(
                c.cluster_id or "",
                c.cluster_name or "",
                c.state.value if c.state else "UNKNOWN",
                c.state_message or "",
            )
            for c in listed
        ]

    def start_cluster(self) -> ClusterState:
        """Ask the workspace to start a terminated cluster (one that is up or coming up is left be)."""
        current = self.cluster()
        if current.state == State.TERMINATED.value:
            self.workspace.call(
                "start the cluster", self.client.clusters.start, cluster_id=self.connection.cluster_id
            )
            return self.cluster()
        if State(current.state) in _USABLE | _COMING_UP:
            return current
        if current.state == State.TERMINATING.value:
            raise EngineError(
                f"The cluster of fabric '{self.fabric_name}' is still stopping; start it once it is "
                "TERMINATED."
            )
        raise EngineError(self._not_running(current))

    def prepare(self, notify: Callable[[str], None], timeout: float) -> None:
        """Wait for a cluster that is starting (saying so); a stopped one is the user's call."""
        started = time.monotonic()
        shown = None
        while True:
            current = self.cluster()
            state = State(current.state)
            if state in _USABLE:
                if shown is not None:
                    notify(f"Cluster {current.name or current.cluster_id} is running.")
                return
            waited = time.monotonic() - started
            if state not in _COMING_UP:
                raise EngineError(self._not_running(current))
            if waited > timeout:
                raise EngineError(
                    f"The cluster of fabric '{self.fabric_name}' is still {current.state} after "
                    f"{waited:.0f} s; see it in the workspace."
                )
            if (current.state, current.message) != shown:
                notify(
                    f"Cluster {current.name or current.cluster_id} is {current.state}"
                    + (f" ({current.message})" if current.message else "")
                    + f"; waiting for it ({waited:.0f} s)..."
                )
                shown = (current.state, current.message)
            time.sleep(min(5.0, 0.5 + waited / 10))

    def _not_running(self, current: ClusterState) -> str:
        detail = f" ({current.message})" if current.message else ""
        if current.state in ("TERMINATED", "TERMINATING"):
            return (
                f"The cluster of fabric '{self.fabric_name}' is {current.state}{detail}; start it with "
                f"`%fabric start` (or `jupyter prophecy fabric start {self.fabric_name}`) and run the "
                "cell again."
            )
        return (
            f"The cluster of fabric '{self.fabric_name}' is in state {current.state}{detail}; it cannot "
            "run cells. Look at it in the workspace, or ask its owner."
        )

    # -- sessions (execution contexts) ------------------------------------------------------------

    def open_session(self, spec: SessionSpec) -> RemoteSession:
        language = _LANGUAGES.get(spec.kind)
        if language is None:
            raise EngineError(f"Databricks has no {spec.kind} contexts; use python, sql, scala or r.")
        current = self.cluster()
        if State(current.state) not in _USABLE:
            raise EngineError(self._not_running(current))
        answer = self.workspace.post_once(
            "create an execution context",
            "/api/1.2/contexts/create",
            {"clusterId": self.connection.cluster_id, "language": language.value},
        )
        context_id = answer["id"]
        self._languages[context_id] = language
        return self.session(context_id)

    def session(self, session_id: str, wait: float = 0.0) -> RemoteSession:
        try:
            status = self.client.command_execution.context_status(
                cluster_id=self.connection.cluster_id, context_id=session_id
            )
        except DatabricksError as exc:
            if _context_gone(exc):
                raise self._gone() from None
            raise self.workspace.error("report the execution context", exc) from None
        except TimeoutError:
            raise EngineError(f"Fabric '{self.fabric_name}' did not report the execution context.") from None
        state = {
            ContextStatus.PENDING: SessionState.STARTING,
            ContextStatus.RUNNING: SessionState.IDLE,
        }.get(status.status, SessionState.ENDED)
        raw = status.status.value if status.status else "Unknown"
        return RemoteSession(id=session_id, state=state, raw_state=raw, app_id=self.connection.cluster_id)

    def _gone(self) -> SessionGone:
        return SessionGone(
            f"The execution context on fabric '{self.fabric_name}' is gone (evicted, or the cluster "
            "restarted); variables from earlier cells are lost."
        )

    def close_session(self, session_id: str) -> None:
        self._languages.pop(session_id, None)
        try:
            self.client.command_execution.destroy(
                cluster_id=self.connection.cluster_id, context_id=session_id
            )
        except DatabricksError as exc:
            if not _context_gone(exc):
                raise self.workspace.error("destroy the execution context", exc) from None
        except TimeoutError:
            raise EngineError(f"Fabric '{self.fabric_name}' did not destroy the execution context.") from None

    # -- statements (commands) ------------------------------------------------------------------

    def submit(self, session_id: str, code: str, kind: str, run_id: str) -> StatementStatus:
        language = _LANGUAGES.get(kind) or self._languages.get(session_id, Language.PYTHON)
        body = {
            "clusterId": self.connection.cluster_id,
            "contextId": session_id,
            "language": language.value,
            "command": code,
        }
        try:
            answer = self.workspace.post_once("run the command", "/api/1.2/commands/execute", body)
        except EngineError as exc:
            if "ContextNotFound" in str(exc):
                raise self._gone() from None
            raise
        return StatementStatus(id=answer["id"], state=RunState.QUEUED)

    def poll(self, session_id: str, statement_id: str, wait: float = 0.0) -> StatementStatus:
        try:
            answer = self.client.command_execution.command_status(
                cluster_id=self.connection.cluster_id, context_id=session_id, command_id=statement_id
            )
        except DatabricksError as exc:
            if "CommandNotFound" in str(exc):
                raise StatementLost(f"Fabric '{self.fabric_name}' no longer knows the command.") from None
            if _context_gone(exc):
                raise self._gone() from None
            raise self.workspace.error("report the command", exc) from None
        except TimeoutError:
            raise EngineError(f"Fabric '{self.fabric_name}' did not report the command.") from None
        if answer.status == CommandStatus.FINISHED:
            results = answer.results.as_dict() if answer.results else None
            if results and results.get("resultType") == "table":
                payload = table_payload(results)
                result = Result(ResultKind.TABLE, truncated=payload.header.truncated, row_limit=payload.limit)
                return StatementStatus(
                    id=statement_id, state=RunState.FINISHED, result=result, payload=payload
                )
            result = result_of(results)
            state = RunState.FINISHED if result.ok else RunState.FAILED
            return StatementStatus(id=statement_id, state=state, result=result)
        state = _COMMAND_STATES.get(answer.status, RunState.RUNNING)
        result = None
        if state == RunState.CANCELLED:
            result = Result.of_error("Cancelled", "The command was cancelled.")
        elif state == RunState.FAILED:
            result = result_of(answer.results.as_dict() if answer.results else None)
            if result.ok:
                result = Result.of_error("Error", f"Fabric '{self.fabric_name}' reports the command failed.")
        return StatementStatus(id=statement_id, state=state, result=result)

    def cancel(self, session_id: str, statement_id: str) -> None:
        self.workspace.call(
            "cancel the command",
            self.client.command_execution.cancel,
            cluster_id=self.connection.cluster_id,
            context_id=session_id,
            command_id=statement_id,
        )

    def complete(self, session_id: str, code: str, cursor: int, kind: str) -> list[str]:
        return []

    def logs(self, session_id: str, size: int = 100) -> list[str]:
        current = self.cluster()
        return [f"cluster {current.cluster_id} ({current.name}): {current.state} {current.message}".strip()]

    def keepalive(self, session_id: str) -> None:
        self.session(session_id)

    def close(self) -> None:
        pass


def _context_gone(exc: DatabricksError) -> bool:
    return "ContextNotFound" in str(exc) or isinstance(exc, NotFound)


def table_payload(results: Mapping[str, Any]) -> TablePayload:
    """A ``table`` result's rows and schema, to become a typed DataFrame where it is shown."""
    json_schema = results.get("isJsonSchema", True)
    fields = [
        {"name": c["name"], "type": json.loads(c["type"]) if json_schema else c["type"], "nullable": True}
        for c in results.get("schema") or []
    ]
    rows = results.get("data") or []
    header = TableHeader(
        {"type": "struct", "fields": fields}, None, "json", len(rows), bool(results.get("truncated")), 1
    )
    return TablePayload(header, json.dumps(rows).encode(), -1)


def result_of(results: Mapping[str, Any] | None) -> Result:
    """Command Execution ``results`` other than tables as a Result (``Finished`` may carry none)."""
    if not results:
        return Result.of_text("")
    result_type = results.get("resultType")
    if result_type == "error":
        summary = _ANSI.sub("", html.unescape(re.sub(r"<[^>]+>", "", str(results.get("summary") or ""))))
        name, _, message = summary.partition(": ")
        cause = _ANSI.sub("", str(results.get("cause") or ""))
        return Result.of_error(name.strip() or "Error", message.strip(), cause.splitlines())
    if result_type in ("image", "images"):
        names = results.get("fileNames") or [results.get("fileName")]
        for name in filter(None, names):
            if str(name).startswith("data:image/png;base64,"):
                return Result(ResultKind.IMAGE, image_png=base64.b64decode(str(name).split(",", 1)[1]))
        return Result.of_text(f"(a plot the cluster keeps at {names[0]}; it is not carried back)")
    text = _OUT_PREFIX.sub("", str(results.get("data") or ""))
    if _HTML.match(text):
        return Result(ResultKind.HTML, html=text)
    return Result.of_text(text)
