"""What every interpreter process behind a gateway session does, whatever runs the code (a
SparkSession, a Snowpark session): connect back to the gateway, take statements one at a time in
the main thread, answer completions, push progress, and cancel a statement by stopping its remote
work and interrupting its Python with SIGINT (only where the backend allows it).

A backend subclasses :class:`StatementLoop` and fills in its hooks.
"""

from __future__ import annotations

import os
import queue
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from prophecy_jupyter.gateway import protocol
from prophecy_jupyter.gateway.repl import PythonRepl, error_output
from prophecy_jupyter.gateway.uploads import UPLOADS_ENV

PROGRESS_INTERVAL = 0.2
CANCEL_INTERVAL = 0.1
INTERRUPT_INTERVAL = 1.0


class InterruptGuard:
    """Lets SIGINT raise KeyboardInterrupt only while a statement runs, and not while the main
    thread is inside a call that must not be torn (``depth`` > 0, counted by the backend)."""

    def __init__(self) -> None:
        self.main_thread = threading.main_thread().ident
        self.statement_running = False
        self.depth = 0

    def install(self) -> None:
        signal.signal(signal.SIGINT, self._on_sigint)

    @property
    def interruptible(self) -> bool:
        return self.statement_running and self.depth == 0

    def _on_sigint(self, signum, frame) -> None:
        if self.interruptible:
            raise KeyboardInterrupt


class Statement:
    def __init__(self, statement_id: int, kind: str, code: str):
        self.id = statement_id
        self.kind = kind
        self.code = code
        self.cancel_requested = False
        self.done = threading.Event()


class StatementLoop:
    """Runs one session's statements and answers the gateway."""

    def __init__(self, channel: protocol.Channel, namespace: dict[str, Any], guard: InterruptGuard):
        self.channel = channel
        self.repl = PythonRepl(namespace)
        self.runners: dict[str, Callable[[str], dict[str, Any]]] = {"sql": self.execute_sql}
        self.guard = guard
        self.current: Statement | None = None
        self.work: queue.Queue[Statement | None] = queue.Queue()

    # -- hooks --------------------------------------------------------------------------------

    def begin(self, statement: Statement) -> None:
        """Before a statement runs (e.g. name its remote work after it)."""

    def execute_sql(self, query: str) -> dict[str, Any]:
        """A SQL statement's Livy output."""
        raise NotImplementedError

    def sql_names(self) -> list[str]:
        """Names a SQL statement may complete to (tables)."""
        return []

    def stop_remote(self, statement: Statement) -> bool:
        """Stop the statement's remote work; whether some still runs (then Python is not yet
        interrupted)."""
        return False

    def progress(self, statement: Statement) -> float | None:
        """The statement's progress, 0 to 1 (None: unknown)."""
        return None

    def detail(self, statement: Statement) -> str | None:
        """What the statement is waiting on, in words (None: nothing to say)."""
        return None

    # -- the loop ------------------------------------------------------------------------------

    def serve(self) -> None:
        self.guard.install()
        threading.Thread(target=self._read_messages, name="gateway-reader", daemon=True).start()
        threading.Thread(target=self._report_progress, name="progress", daemon=True).start()
        while (statement := self.work.get()) is not None:
            self._run(statement)

    def _read_messages(self) -> None:
        while (message := self.channel.receive()) is not None:
            op = message.get("op")
            if op == "execute":
                self.work.put(Statement(message["id"], message["kind"], message["code"]))
            elif op == "cancel":
                self._cancel(message["id"])
            elif op == "complete":
                candidates = self._complete(message)
                self.channel.send({"op": "completion", "ref": message["ref"], "candidates": candidates})
            elif op == "shutdown":
                break
        self.work.put(None)

    def _complete(self, message: dict[str, Any]) -> list[str]:
        if message.get("kind") == "sql":
            try:
                return sorted(self.sql_names())
            except Exception:
                return []
        return self.repl.complete(message["code"], message["cursor"])

    def _run(self, statement: Statement) -> None:
        self.current = statement
        self.begin(statement)
        self.guard.statement_running = True
        try:
            output = self.runners.get(statement.kind, self.repl.execute)(statement.code)
            self.guard.statement_running = False
        except KeyboardInterrupt as exc:
            self.guard.statement_running = False
            output = error_output(exc)
        self.current = None
        statement.done.set()
        self.channel.send(
            {
                "op": "result",
                "id": statement.id,
                "output": output,
                "cancelled": statement.cancel_requested,
                "progress": 1.0,
            }
        )

    def _cancel(self, statement_id: int) -> None:
        statement = self.current
        if statement is None or statement.id != statement_id or statement.cancel_requested:
            return
        statement.cancel_requested = True
        threading.Thread(target=self._cancel_until_done, args=(statement,), daemon=True).start()

    def _cancel_until_done(self, statement: Statement) -> None:
        """Stop the remote work while there is some; interrupt the statement's Python otherwise."""
        main = threading.main_thread().ident
        last_interrupt = 0.0
        while not statement.done.is_set():
            try:
                remote_busy = self.stop_remote(statement)
            except Exception:
                remote_busy = False
            now = time.monotonic()
            if not remote_busy and self.guard.interruptible and now - last_interrupt >= INTERRUPT_INTERVAL:
                last_interrupt = now
                signal.pthread_kill(main, signal.SIGINT)
            statement.done.wait(CANCEL_INTERVAL)

    def _report_progress(self) -> None:
        last: tuple[int, float | None, str | None] | None = None
        while True:
            time.sleep(PROGRESS_INTERVAL)
            statement = self.current
            if statement is None:
                continue
            try:
                value, detail = self.progress(statement), self.detail(statement)
            except Exception:
                continue
            if (value is None and detail is None) or statement.done.is_set():
                continue
            if (statement.id, value, detail) == last:
                continue
            last = (statement.id, value, detail)
            self.channel.send({"op": "progress", "id": statement.id, "progress": value, "detail": detail})


def connect(preload: Callable[[], None]) -> tuple[protocol.Channel, dict[str, Any] | None]:
    """Connect back to the gateway (as the environment says, then forgotten), ``preload`` while it
    prepares its first message, and take that message: what to start, or, for a spare interpreter
    (no session yet), which JVM to attach to first (None if the gateway said nothing)."""
    channel = protocol.Channel.connect(os.environ.pop(protocol.SOCKET_ENV))
    claim = os.environ.pop(protocol.SESSION_ENV)
    token = os.environ.pop(protocol.TOKEN_ENV)
    channel.send({"op": "hello", "session": claim, "token": token, "pid": os.getpid()})
    preload()
    first = channel.receive()
    return channel, first if first is not None and first.get("op") in ("start", "attach") else None


def begin_session(start: dict[str, Any]) -> int:
    """Take what a start message says of the session (where its uploads arrive); its id."""
    os.environ[UPLOADS_ENV] = start["uploads"]
    return int(start["session"])
