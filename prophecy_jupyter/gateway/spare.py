"""A spare interpreter: started before any session asks for one, attached to the shared JVM, and
handed to the next session that runs there, so that the session is ready at once."""

from __future__ import annotations

import asyncio
import logging
import secrets
import signal
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from prophecy_jupyter.gateway import processes, protocol
from prophecy_jupyter.gateway.logs import LogBuffer, pump

log = logging.getLogger(__name__)

#: Seconds with no session or statement starting or running before a spare taken is replaced.
REPLACE_AFTER_QUIET = 3.0
#: Spares that fail to start before the gateway stops keeping one.
MAX_FAILURES = 3


@dataclass(eq=False)
class Spare:
    """One interpreter process waiting for a session."""

    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    process: asyncio.subprocess.Process | None = None
    log: LogBuffer = field(default_factory=LogBuffer)
    taken: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    """Set to the session that takes the spare (cancelled when the spare is dropped)."""
    jvm: Any = None
    """Its connection to the shared JVM, once it attached (the taking session's from then on)."""


class SpareKeeper:
    """Keeps one spare interpreter on the shared JVM: starts it, attaches it when it connects,
    hands it to a session, and starts the next once the gateway has been quiet for a while."""

    def __init__(
        self,
        launch: Callable[[str], Awaitable[asyncio.subprocess.Process]],
        jvm: Callable[[], Awaitable[Any]],
        spawn: Callable[[Coroutine], asyncio.Task],
        enabled: bool,
        release: Callable[[Any], Coroutine] | None = None,
    ):
        """``launch(token)`` starts an interpreter that says it is a spare with ``token``;
        ``jvm()`` opens a connection to the shared JVM (its ``to_json()`` is sent to attach) and
        ``release(connection)`` closes one of a spare dropped; ``spawn`` runs a background task."""
        self._launch, self._jvm, self._spawn, self._release = launch, jvm, spawn, release
        self._enabled = enabled
        self._spare: Spare | None = None
        self._connecting: list[Spare] = []
        """Spares started whose interpreter has not connected yet (taken or not)."""
        self._failures = 0
        self._quiet_since = time.monotonic()
        self._closing = False

    def keep(self) -> None:
        """Start a spare interpreter, if the gateway keeps one and has none."""
        if not self._enabled or self._closing or self._spare is not None or self._failures >= MAX_FAILURES:
            return
        spare = Spare()
        self._spare = spare
        self._connecting.append(spare)
        self._spawn(self._run(spare))

    def renew(self) -> None:
        """Drop the spares no session took (they attached, or will attach, to a JVM that died), and
        start one for the next JVM."""
        for spare in dict.fromkeys([*self._connecting, *([self._spare] if self._spare else [])]):
            if not spare.taken.done():
                self._drop(spare)
        self.keep()

    def reap(self, working: bool) -> None:
        """Replace a spare taken once nothing has started or run (``working``) for a while."""
        now = time.monotonic()
        if working:
            self._quiet_since = now
        elif now - self._quiet_since >= REPLACE_AFTER_QUIET:
            self.keep()

    def take(self) -> Spare | None:
        """The spare, if one is running and not yet taken; the caller sets ``taken`` to its session."""
        spare = self._spare
        if spare is None or spare.process is None or spare.taken.done():
            return None
        self._spare = None
        return spare

    def claim(self, token: bytes) -> Spare | None:
        """The spare whose interpreter connected with ``token`` (None: no such spare)."""
        spare = next((s for s in self._connecting if secrets.compare_digest(token, s.token.encode())), None)
        if spare is not None:
            self._connecting.remove(spare)
        return spare

    async def attach(
        self, spare: Spare, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> tuple[Any | None, str | None]:
        """Attach the spare to the shared JVM, then wait for a session to take it. Returns that
        session (None if the spare was dropped) and, if attaching failed, why: a session that had
        taken the spare must then fail."""
        try:
            spare.jvm = await self._jvm()
            writer.write(protocol.encode({"op": "attach", "jvm": spare.jvm.to_json()}))
            await writer.drain()
            answer = await protocol.read_message(reader) or {"error": "it exited"}
        except Exception as exc:
            answer = {"error": str(exc)}
        if answer.get("op") != "attached":
            error = f"could not attach to the shared Spark JVM: {answer.get('error')}"
            if spare.taken.done() and not spare.taken.cancelled():
                return spare.taken.result(), error
            self._drop(spare, error)
            return None, error
        spare.log.add("attached to the shared Spark JVM, waiting for a session")
        try:
            return await spare.taken, None
        except asyncio.CancelledError:
            return None, None

    async def shutdown(self) -> None:
        """Stop keeping a spare, and stop the ones no session took."""
        self._closing = True
        spares = dict.fromkeys([*self._connecting, *([self._spare] if self._spare else [])])
        await asyncio.gather(*filter(None, (self._drop(spare) for spare in spares)))

    async def _run(self, spare: Spare) -> None:
        try:
            spare.process = await self._launch(spare.token)
        except OSError as exc:
            self._drop(spare, f"could not start: {exc}")
            return
        self._spawn(pump(spare.process, spare.log))
        code = await spare.process.wait()
        if not spare.taken.done():
            self._drop(spare, f"exited with code {code}")

    def _drop(self, spare: Spare, reason: str | None = None) -> asyncio.Task | None:
        """Forget a spare no session took, and stop its process (``reason``: it failed); the task
        that stops it."""
        if reason is not None:
            self._failures += 1
            log.warning("the spare interpreter %s; its log ends: %s", reason, " | ".join(spare.log.tail(5)))
        if self._spare is spare:
            self._spare = None
        if spare in self._connecting:
            self._connecting.remove(spare)
        if not spare.taken.done() and spare.jvm is not None and self._release is not None:
            self._spawn(self._release(spare.jvm))
        spare.taken.cancel()
        if spare.process is None or spare.process.returncode is not None:
            return None
        return self._spawn(processes.stop(spare.process, signal.SIGTERM, grace=5))
