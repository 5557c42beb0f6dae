"""The small protocol every engine speaks.

Each call is one request (or one request plus a reconciliation after an ambiguous failure);
waiting and backoff live in the session service, so one scheduler polls every statement.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from prophecy_jupyter.results.model import Result, RunState

if TYPE_CHECKING:
    from prophecy_jupyter.results.transport import RemoteTables, TablePayload


class SessionState:
    """Normalised session states."""

    STARTING = "starting"
    IDLE = "idle"
    BUSY = "busy"
    ENDED = "ended"


@dataclass(frozen=True)
class PollPolicy:
    """When to check a running statement again.

    The first check follows the submit within ``first_delay``; after that the delay is a share
    (``ratio``) of the time the statement has run so far, so checks grow geometrically and the
    latency they add stays near ``ratio`` of the statement's own time; never more than ``cap``.
    Servers that long-poll are asked to hold each check up to ``long_poll_wait`` instead.
    """

    first_delay: float = 0.003
    ratio: float = 0.1
    cap: float = 1.0
    long_poll_wait: float = 1.0

    def next_delay(self, elapsed: float) -> float:
        return min(self.cap, max(self.first_delay, elapsed * self.ratio))


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
    payload: TablePayload | None = None
    """A table result's data, for engines that return tables themselves (SQL warehouses)."""
    started_ms: int = 0
    completed_ms: int = 0
    detail: str | None = None
    """What the statement waits on, in words (e.g. a warehouse query's state)."""

    @property
    def done(self) -> bool:
        return self.state in RunState.DONE


class Engine(Protocol):
    """One wire client per engine kind."""

    name: str
    poll_policy: PollPolicy | None
    """How often its statements are checked (None: the session service's default)."""
    tables: RemoteTables
    """How its interpreter hands over a DataFrame or a SQL query's rows as a table."""

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


@runtime_checkable
class RunsSql(Protocol):
    """An engine that runs SQL itself (a warehouse), rather than through an interpreter."""

    def submit_query(self, query: str, parameters: list[Any], limit: int) -> StatementStatus: ...


@runtime_checkable
class HasClusters(Protocol):
    """An engine whose fabric is a cluster a user may start, in a workspace of clusters."""

    def cluster(self) -> Any: ...

    def clusters(self) -> list[Any]: ...

    def start_cluster(self) -> Any: ...


@runtime_checkable
class RunsBatches(Protocol):
    """An engine that runs a file as a batch job (``spark-submit`` there)."""

    def submit_batch(self, file: str, args: list[str], name: str, conf: Any) -> int: ...

    def batch(self, batch_id: int, log_lines: int = 200) -> tuple[str, list[str]]: ...


@runtime_checkable
class TakesUploads(Protocol):
    """An engine whose server may take a table's Arrow bytes as an upload, rather than as text in
    statements (our gateway does; Livy itself does not)."""

    def upload(self, session_id: str, data: bytes) -> str | None:
        """The name the session's interpreter finds the bytes by, or None if the server takes none."""
        ...
