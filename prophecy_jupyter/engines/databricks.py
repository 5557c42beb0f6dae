"""Databricks all-purpose clusters through the Command Execution API 1.2, on databricks-sdk.

A session is an execution context on the fabric's cluster; a statement is a command. The SDK
brings auth (PAT, OAuth M2M with refresh, ``~/.databrickscfg`` profiles), typed models and
retries; its waiters sleep seconds between checks, so the session service polls
``command_status`` itself.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from databricks.sdk import WorkspaceClient
from databricks.sdk.core import Config
from databricks.sdk.errors import (
    DatabricksError,
    NotFound,
    PermissionDenied,
    ResourceDoesNotExist,
    Unauthenticated,
)
from databricks.sdk.service.compute import CommandStatus, ContextStatus, Language, State

from prophecy_jupyter.engines.base import (
    AuthenticationError,
    EngineError,
    RemoteSession,
    RunState,
    SessionGone,
    SessionSpec,
    SessionState,
    StatementLost,
    StatementStatus,
)
from prophecy_jupyter.results.model import Result, ResultKind

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
_OUT_PREFIX = re.compile(r"^Out\[\d+\]:\s?", re.MULTILINE)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_HTML = re.compile(r"^\s*<(!doctype|html|div|table|style|span|p|h[1-6])\b", re.IGNORECASE)


@dataclass(frozen=True)
class DatabricksConnection:
    """Where and how to reach the workspace (the secret comes separately, from the vault)."""

    host: str
    cluster_id: str
    auth: str = "pat"
    client_id: str | None = None
    profile: str | None = None
    retry_timeout: float = 60.0
    http_timeout: float = 60.0


class DatabricksEngine:
    """One workspace client per user and fabric."""

    name = "databricks"

    def __init__(self, connection: DatabricksConnection, secret: str | None, fabric_name: str):
        self.connection = connection
        self.fabric_name = fabric_name
        auth: dict[str, Any] = {
            "pat": {"token": secret},
            "oauth-m2m": {"client_id": connection.client_id, "client_secret": secret},
            "profile": {"profile": connection.profile},
        }[connection.auth]
        self.client = WorkspaceClient(
            config=Config(
                host=connection.host,
                retry_timeout_seconds=int(connection.retry_timeout),
                http_timeout_seconds=int(connection.http_timeout),
                **auth,
            )
        )
        self._languages: dict[str, Language] = {}

    @property
    def supports_long_poll(self) -> bool:
        return False

    def _call(self, what: str, fn, *args: Any, **kwargs: Any) -> Any:
        """One SDK call, its failures as errors that name the fabric and say what to do."""
        try:
            return fn(*args, **kwargs)
        except (PermissionDenied, Unauthenticated) as exc:
            raise AuthenticationError(
                f"Fabric '{self.fabric_name}' refused {what} ({exc}). Check your credential for it "
                f"(`jupyter prophecy credentials set {self.fabric_name}`)."
            ) from None
        except ResourceDoesNotExist as exc:
            raise EngineError(f"Fabric '{self.fabric_name}': {exc}. Check the fabric's cluster id.") from None
        except TimeoutError:
            raise EngineError(
                f"Fabric '{self.fabric_name}' did not answer {what} in {self.connection.retry_timeout:.0f} s."
            ) from None
        except DatabricksError as exc:
            raise EngineError(f"Fabric '{self.fabric_name}' could not {what}: {exc}") from None

    # -- clusters -----------------------------------------------------------------------------

    def cluster_state(self) -> tuple[State | None, str]:
        cluster = self._call("read the cluster", self.client.clusters.get, self.connection.cluster_id)
        return cluster.state, cluster.state_message or ""

    def start_cluster(self) -> None:
        self._call("start the cluster", self.client.clusters.start, cluster_id=self.connection.cluster_id)

    # -- sessions (execution contexts) ------------------------------------------------------------

    def open_session(self, spec: SessionSpec) -> RemoteSession:
        language = _LANGUAGES.get(spec.kind)
        if language is None:
            raise EngineError(f"Databricks has no {spec.kind} contexts; use python, sql, scala or r.")
        state, message = self.cluster_state()
        if state != State.RUNNING:
            raise EngineError(
                f"The cluster of fabric '{self.fabric_name}' is {state.value if state else 'unknown'}"
                + (f" ({message})" if message else "")
                + "; start it (`%fabric start`) and run the cell again."
            )
        wait = self._call(
            "create an execution context",
            self.client.command_execution.create,
            cluster_id=self.connection.cluster_id,
            language=language,
        )
        context_id = wait.response.id
        self._languages[context_id] = language
        return self.session(context_id)

    def session(self, session_id: str, wait: float = 0.0) -> RemoteSession:
        try:
            status = self.client.command_execution.context_status(
                cluster_id=self.connection.cluster_id, context_id=session_id
            )
        except DatabricksError as exc:
            if "ContextNotFound" in str(exc) or isinstance(exc, NotFound):
                raise SessionGone(
                    f"The execution context on fabric '{self.fabric_name}' is gone (evicted, or the "
                    "cluster restarted); its state is lost. The next cell starts a new one."
                ) from None
            raise EngineError(f"Fabric '{self.fabric_name}' could not report the context: {exc}") from None
        state = {
            ContextStatus.PENDING: SessionState.STARTING,
            ContextStatus.RUNNING: SessionState.IDLE,
        }.get(status.status, SessionState.ENDED)
        raw = status.status.value if status.status else "Unknown"
        return RemoteSession(id=session_id, state=state, raw_state=raw, app_id=self.connection.cluster_id)

    def close_session(self, session_id: str) -> None:
        self._languages.pop(session_id, None)
        self._call(
            "destroy the execution context",
            self.client.command_execution.destroy,
            cluster_id=self.connection.cluster_id,
            context_id=session_id,
        )

    # -- statements (commands) ------------------------------------------------------------------

    def submit(self, session_id: str, code: str, kind: str, run_id: str) -> StatementStatus:
        language = _LANGUAGES.get(kind) or self._languages.get(session_id, Language.PYTHON)
        wait = self._call(
            "run the command",
            self.client.command_execution.execute,
            cluster_id=self.connection.cluster_id,
            context_id=session_id,
            language=language,
            command=code,
        )
        command_id = wait.response.id
        return StatementStatus(id=command_id, state=RunState.QUEUED)

    def poll(self, session_id: str, statement_id: str, wait: float = 0.0) -> StatementStatus:
        try:
            answer = self.client.command_execution.command_status(
                cluster_id=self.connection.cluster_id, context_id=session_id, command_id=statement_id
            )
        except DatabricksError as exc:
            if "CommandNotFound" in str(exc):
                raise StatementLost(f"Fabric '{self.fabric_name}' no longer knows the command.") from None
            if "ContextNotFound" in str(exc):
                raise SessionGone(
                    f"The execution context on fabric '{self.fabric_name}' is gone; its state is lost."
                ) from None
            raise EngineError(f"Fabric '{self.fabric_name}' could not report the command: {exc}") from None
        if answer.status == CommandStatus.FINISHED:
            result = result_of(answer.results.as_dict() if answer.results else None)
            state = RunState.FINISHED if result.ok else RunState.FAILED
            return StatementStatus(id=statement_id, state=state, result=result)
        state = _COMMAND_STATES.get(answer.status, RunState.RUNNING)
        result = (
            Result.of_error("Cancelled", "The command was cancelled.")
            if state == RunState.CANCELLED
            else None
        )
        return StatementStatus(id=statement_id, state=state, result=result)

    def cancel(self, session_id: str, statement_id: str) -> None:
        self._call(
            "cancel the command",
            self.client.command_execution.cancel,
            cluster_id=self.connection.cluster_id,
            context_id=session_id,
            command_id=statement_id,
        )

    def complete(self, session_id: str, code: str, cursor: int, kind: str) -> list[str]:
        return []

    def logs(self, session_id: str, size: int = 100) -> list[str]:
        state, message = self.cluster_state()
        return [
            f"cluster {self.connection.cluster_id}: {state.value if state else 'unknown'} {message}".strip()
        ]

    def keepalive(self, session_id: str) -> None:
        self.session(session_id)

    def close(self) -> None:
        pass


def result_of(results: Mapping[str, Any] | None) -> Result:
    """Command Execution ``results`` as a Result (``Finished`` may carry none)."""
    if not results:
        return Result.of_text("")
    kind = results.get("resultType")
    if kind == "error":
        summary = _ANSI.sub("", html.unescape(re.sub(r"<[^>]+>", "", str(results.get("summary") or ""))))
        name, _, message = summary.partition(": ")
        cause = _ANSI.sub("", str(results.get("cause") or ""))
        return Result.of_error(name.strip() or "Error", message.strip(), cause.splitlines())
    if kind in ("image", "images"):
        names = results.get("fileNames") or [results.get("fileName")]
        for name in filter(None, names):
            if str(name).startswith("data:image/png;base64,"):
                return Result(ResultKind.IMAGE, image_png=base64.b64decode(str(name).split(",", 1)[1]))
        return Result.of_text(f"(a plot the cluster keeps at {names[0]})")
    if kind == "table":
        from prophecy_jupyter.results.frames import frame_from_rows  # pandas, on first use
        from prophecy_jupyter.results.schema import Column

        json_schema = results.get("isJsonSchema", True)
        cols = [
            Column(c["name"], json.loads(c["type"]) if json_schema else c["type"], True)
            for c in results.get("schema") or []
        ]
        frame = frame_from_rows(results.get("data") or [], cols, None)
        return Result.of_table(frame, truncated=bool(results.get("truncated")))
    text = _OUT_PREFIX.sub("", str(results.get("data") or ""))
    if _HTML.match(text):
        return Result(ResultKind.HTML, html=text)
    return Result.of_text(text)
