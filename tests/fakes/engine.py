"""An engine in memory: the engine protocol with scripted session and statement states and faults,
so the session service's own logic (polling, cancel, reopening, upkeep, recovery) is tested in
milliseconds. The real engines are tested against real servers elsewhere."""

from __future__ import annotations

import datetime
import itertools
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from prophecy_jupyter.engines.base import (
    PollPolicy,
    RemoteSession,
    RunState,
    SessionSpec,
    SessionState,
    StatementStatus,
)
from prophecy_jupyter.errors import NotFound, SessionGone, StatementLost
from prophecy_jupyter.results.model import Result
from prophecy_jupyter.results.transport import SPARK_TABLES
from prophecy_jupyter.services.fabrics import Fabric

FAST = PollPolicy(first_delay=0.001, ratio=0.5, cap=0.005)


@dataclass
class Script:
    """How a statement goes: ``polls`` answers of running (with progress), then its outcome."""

    polls: int = 0
    state: str = RunState.FINISHED
    text: str = "ok"


@dataclass
class _Statement:
    code: str
    session: str
    polls_left: int
    script: Script
    cancelled: bool = False


class FakeEngine:
    name = "fake"
    tables = SPARK_TABLES
    supports_long_poll = False

    def __init__(self, start_polls: int = 0, poll_policy: PollPolicy = FAST):
        self.poll_policy = poll_policy
        self.start_polls = start_polls
        self.sessions: dict[str, str] = {}
        self._starting: dict[str, int] = {}
        self.statements: dict[str, _Statement] = {}
        self.scripts: dict[str, Script] = {}
        self.faults: dict[str, list[Exception]] = defaultdict(list)
        self.calls: list[tuple[str, ...]] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    # -- scripting --------------------------------------------------------------------------------

    def script(self, code: str, **how) -> None:
        """What a statement with this code does (others finish at once, answering "ok")."""
        self.scripts[code] = Script(**how)

    def fail(self, method: str, *errors: Exception) -> None:
        """The next calls of ``method`` raise these errors, one each."""
        self.faults[method].extend(errors)

    def end(self, session_id: str) -> None:
        """The fabric loses the session (evicted, cluster restarted)."""
        self.sessions[session_id] = SessionState.ENDED

    def count(self, method: str) -> int:
        return sum(1 for call in self.calls if call[0] == method)

    def submitted(self, code: str) -> int:
        """How many times statements with this code were sent."""
        return sum(1 for call in self.calls if call[:1] == ("submit",) and call[2] == code)

    def _call(self, method: str, *args: str) -> None:
        with self._lock:
            self.calls.append((method, *args))
            faults = self.faults[method]
            if faults:
                raise faults.pop(0)

    def _remote(self, session_id: str) -> RemoteSession:
        state = self.sessions.get(session_id)
        if state is None:
            raise SessionGone(f"Session {session_id} is gone.")
        return RemoteSession(session_id, state, state)

    # -- the engine protocol ----------------------------------------------------------------------

    def prepare(self, notify: Callable[[str], None], timeout: float) -> None:
        self._call("prepare")

    def open_session(self, spec: SessionSpec) -> RemoteSession:
        self._call("open_session", spec.kind)
        session_id = f"s{next(self._ids)}"
        self.sessions[session_id] = SessionState.STARTING if self.start_polls else SessionState.IDLE
        self._starting[session_id] = self.start_polls
        return self._remote(session_id)

    def session(self, session_id: str, wait: float = 0.0) -> RemoteSession:
        self._call("session", session_id)
        if self.sessions.get(session_id) == SessionState.STARTING:
            self._starting[session_id] -= 1
            if self._starting[session_id] <= 0:
                self.sessions[session_id] = SessionState.IDLE
        return self._remote(session_id)

    def submit(self, session_id: str, code: str, kind: str, run_id: str) -> StatementStatus:
        self._call("submit", session_id, code)
        if self.sessions.get(session_id) in (None, SessionState.ENDED):
            raise SessionGone(f"Session {session_id} is gone.")
        statement_id = f"st{next(self._ids)}"
        script = self.scripts.get(code, Script())
        self.statements[statement_id] = _Statement(code, session_id, script.polls, script)
        return StatementStatus(statement_id, RunState.QUEUED)

    def poll(self, session_id: str, statement_id: str, wait: float = 0.0) -> StatementStatus:
        self._call("poll", session_id, statement_id)
        if self.sessions.get(session_id) in (None, SessionState.ENDED):
            raise SessionGone(f"Session {session_id} is gone.")
        statement = self.statements.get(statement_id)
        if statement is None:
            raise StatementLost(f"Statement {statement_id} is gone.")
        if statement.cancelled:
            return StatementStatus(
                statement_id, RunState.CANCELLED, result=Result.of_error("Cancelled", "cancelled")
            )
        if statement.polls_left > 0:
            statement.polls_left -= 1
            done = statement.script.polls - statement.polls_left
            return StatementStatus(
                statement_id, RunState.RUNNING, progress=done / (statement.script.polls + 1)
            )
        script = statement.script
        if script.state == RunState.FINISHED:
            return StatementStatus(
                statement_id, RunState.FINISHED, 1.0, Result.of_text(script.text), None, 1, 2
            )
        return StatementStatus(statement_id, script.state, 1.0, Result.of_error("Boom", script.text))

    def cancel(self, session_id: str, statement_id: str) -> None:
        self._call("cancel", session_id, statement_id)
        self.statements[statement_id].cancelled = True

    def complete(self, session_id: str, code: str, cursor: int, kind: str) -> list[str]:
        self._call("complete", session_id)
        return [code[:cursor] + "_completed"]

    def logs(self, session_id: str, size: int = 100) -> list[str]:
        self._call("logs", session_id)
        return [f"log of {session_id}"][:size]

    def keepalive(self, session_id: str) -> None:
        self._call("keepalive", session_id)

    def close_session(self, session_id: str) -> None:
        self._call("close_session", session_id)
        self.sessions[session_id] = SessionState.ENDED

    def close(self) -> None:
        self._call("close")


class FakeEngines:
    """Builds the one fake engine for every fabric (what ``EngineFactory`` is to the real ones)."""

    def __init__(self, engine: FakeEngine):
        self.fake = engine

    def engine(self, fabric: Fabric, secret: str | None, proxy_user: str | None = None) -> FakeEngine:
        return self.fake


class FakeFabrics:
    """Fabrics in memory, none needing a secret (what the fabric service is to the session service)."""

    def __init__(self, *fabrics: Fabric):
        self.fabrics = {fabric.id: fabric for fabric in fabrics}

    def get(self, user: str, ref: str) -> Fabric:
        match = self.fabrics.get(ref) or next((f for f in self.fabrics.values() if f.ref == ref), None)
        if match is None:
            raise NotFound(f"No fabric '{ref}'.")
        return match

    def secret(self, user: str, fabric: Fabric) -> str | None:
        return None

    def secret_set_at(self, user: str, fabric: Fabric) -> datetime.datetime | None:
        return None


def remote_fabric(name: str = "fake") -> Fabric:
    """A fabric whose sessions outlive the server (a remote Livy with no auth)."""
    settings = {"url": "http://127.0.0.1:9", "auth": "none"}
    return Fabric(id=f"id-{name}", team="default", name=name, kind="livy", settings=settings)
