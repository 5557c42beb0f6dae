"""The small protocol every engine speaks.

Each call is one request (or one request plus a reconciliation after an ambiguous failure);
waiting and backoff live in the session service, so one scheduler polls every statement.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from prophecy_jupyter.results.model import Result


class EngineError(Exception):
    """A failure whose message says what happened and what to do."""


class AuthenticationError(EngineError):
    """The fabric rejected the credentials (401/403)."""


class SessionGone(EngineError):
    """The remote session no longer exists or has ended; its state is lost."""


class StatementLost(EngineError):
    """The server does not know the statement any more."""


class SessionState:
    """Normalised session states."""

    STARTING = "starting"
    IDLE = "idle"
    BUSY = "busy"
    ENDED = "ended"


class RunState:
    """Normalised statement states (a run's life: queued → running → finished/failed/cancelled)."""

    QUEUED = "queued"
    RUNNING = "running"
    CANCELLING = "cancelling"
    FINISHED = "finished"
    FAILED = "failed"
    CANCELLED = "cancelled"
    DONE = frozenset({FINISHED, FAILED, CANCELLED})


@dataclass(frozen=True)
class SessionSpec:
    """What to open: the interpreter kind and its Spark settings."""

    kind: str = "pyspark"
    name: str | None = None
    conf: dict[str, str] = field(default_factory=dict)
    resources: dict[str, Any] = field(default_factory=dict)
    """Engine resource fields, e.g. Livy's ``driverMemory`` or ``numExecutors``."""
    heartbeat_timeout: int | None = None
    idle_timeout: str | None = None


@dataclass(frozen=True)
class RemoteSession:
    id: str
    state: str
    raw_state: str
    app_id: str | None = None
    notes: tuple[str, ...] = ()
    """Things the user should know, e.g. settings this server version does not accept."""


@dataclass(frozen=True)
class StatementStatus:
    id: str
    state: str
    progress: float | None = None
    result: Result | None = None
    started_ms: int = 0
    completed_ms: int = 0

    @property
    def done(self) -> bool:
        return self.state in RunState.DONE


class Engine(Protocol):
    """One wire client per engine kind."""

    name: str

    @property
    def supports_long_poll(self) -> bool: ...

    def prepare(self, notify: Callable[[str], None], timeout: float) -> None:
        """Bring up what sessions need (e.g. wait for a starting cluster), saying what happens."""
        ...

    def open_session(self, spec: SessionSpec) -> RemoteSession: ...

    def session(self, session_id: str, wait: float = 0.0) -> RemoteSession: ...

    def submit(self, session_id: str, code: str, kind: str, run_id: str) -> StatementStatus: ...

    def poll(self, session_id: str, statement_id: str, wait: float = 0.0) -> StatementStatus: ...

    def cancel(self, session_id: str, statement_id: str) -> None: ...

    def complete(self, session_id: str, code: str, cursor: int, kind: str) -> list[str]: ...

    def logs(self, session_id: str, size: int = 100) -> list[str]: ...

    def keepalive(self, session_id: str) -> None: ...

    def close_session(self, session_id: str) -> None: ...

    def close(self) -> None: ...
