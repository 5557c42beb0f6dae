"""The small protocol every engine speaks.

Each call is one request (or one request plus a reconciliation after an ambiguous failure);
waiting and backoff live in the session service, so one scheduler polls every statement.
"""

from __future__ import annotations

import datetime
import decimal
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from prophecy_jupyter.results.model import Result

if TYPE_CHECKING:
    from prophecy_jupyter.results.transport import TablePayload

_PARAMETER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
_PARAMETER_TYPE = re.compile(
    r"^(STRING|INT|INTEGER|BIGINT|SMALLINT|TINYINT|DOUBLE|FLOAT|BOOLEAN|DATE|TIMESTAMP|DECIMAL(\(\d+,\s*\d+\))?)\Z"
)


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
class PollPolicy:
    """When to check a running statement again.

    The first check follows the submit within ``first_delay``; after that the delay is a share
    (``ratio``) of the time the statement has run so far, so checks grow geometrically and the
    latency they add stays near ``ratio`` of the statement's own time; never more than ``cap``.
    Servers that long-poll are asked to hold each check up to ``long_poll_wait`` instead.
    """

    first_delay: float = 0.005
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
class SqlParameter:
    """A named parameter (``:name`` in the statement); the value travels as text with its type."""

    name: str
    value: str | None
    type: str = "STRING"

    def __post_init__(self) -> None:
        if not _PARAMETER_NAME.match(self.name):
            raise EngineError(f"SQL parameter name {self.name!r} is not a plain identifier.")
        if not _PARAMETER_TYPE.match(self.type):
            raise EngineError(
                f"SQL parameter {self.name} has type {self.type!r}; use STRING, INT, BIGINT, DOUBLE, "
                "DECIMAL(p,s), BOOLEAN, DATE or TIMESTAMP."
            )
        try:
            self.python_value()
        except (ValueError, KeyError, decimal.InvalidOperation):
            raise EngineError(f"SQL parameter {self.name}: {self.value!r} is not a {self.type}.") from None

    def python_value(self) -> Any:
        """The value as the Python object of its type (what Spark binds)."""
        value, kind = self.value, self.type.split("(")[0]
        if value is None:
            return None
        if kind in ("INT", "INTEGER", "BIGINT", "SMALLINT", "TINYINT"):
            return int(value)
        if kind in ("DOUBLE", "FLOAT"):
            return float(value)
        if kind == "DECIMAL":
            return decimal.Decimal(value)
        if kind == "BOOLEAN":
            return {"true": True, "false": False}[value.strip().lower()]
        if kind == "DATE":
            return datetime.date.fromisoformat(value)
        if kind == "TIMESTAMP":
            return datetime.datetime.fromisoformat(value)
        return value

    @classmethod
    def parse(cls, text: str) -> SqlParameter:
        """``NAME=VALUE`` or ``NAME:TYPE=VALUE``, as typed in a magic or on a command line."""
        key, equals, value = text.partition("=")
        if not equals:
            raise EngineError(f"A SQL parameter is NAME=VALUE or NAME:TYPE=VALUE, not {text!r}.")
        name, _, kind = key.partition(":")
        return cls(name.strip(), value, (kind.strip() or "STRING").upper())

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "type": self.type}


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
