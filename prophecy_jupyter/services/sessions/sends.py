"""Local tables sent to a session, a part at a time (``results.sending``): to our gateway as an
upload read by one statement, to any other interpreter as base64 text in statements of at most
``chunk_chars``, each sent when the one before is done. The last part makes the DataFrame."""

from __future__ import annotations

import base64
from typing import Any

from prophecy_jupyter.engines.base import RunsSql, TakesUploads
from prophecy_jupyter.errors import Invalid
from prophecy_jupyter.results.model import RunState
from prophecy_jupyter.results.sending import check_target, parse_sent, piece_code, receive_code
from prophecy_jupyter.results.transport import whole_base64
from prophecy_jupyter.services.sessions.ledger import Ledger
from prophecy_jupyter.services.sessions.model import ManagedSession, StatementRun, StepsRun
from prophecy_jupyter.services.sessions.tables import Tables
from prophecy_jupyter.services.settings import ServiceSettings

KEY_CHARS = frozenset("0123456789abcdef")


class SendRun(StepsRun):
    """A part of a local table sent to the session (see ``results.sending``); the last part's run
    makes the DataFrame ``name`` there."""

    kind = "send"
    what = "send"

    def __init__(self, session: ManagedSession, name: str, part: int, last: bool):
        super().__init__(session, f"send {name} (part {part + 1})")
        self.name = name
        self.part = part
        self.last = last

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "name": self.name, "part": self.part, "last": self.last}


class Sends:
    """Sends the parts of local tables, each as a run of one upload and statements."""

    def __init__(self, ledger: Ledger, tables: Tables, settings: ServiceSettings):
        self.ledger = ledger
        self.tables = tables
        self.settings = settings

    def send(
        self, managed: ManagedSession, key: str, part: int, data: bytes, name: str, view: bool, last: bool
    ) -> SendRun:
        """Start sending one part (Arrow IPC bytes) of the table ``key``; returns at once with the
        run (the upload to our gateway, if any, is done first)."""
        if isinstance(managed.engine, RunsSql):
            raise Invalid(
                f"Fabric '{managed.fabric.ref}' runs SQL only: a table can be sent to a Spark or "
                "Snowflake fabric.",
                "fabric",
            )
        if len(key) != 32 or not KEY_CHARS.issuperset(key):
            raise Invalid("key: 32 hexadecimal digits", "key")
        if part < 0:
            raise Invalid("part: a number from 0", "part")
        check_target(name)
        upload = None  # first, so that a refused upload leaves no run behind
        if isinstance(managed.engine, TakesUploads) and managed.remote is not None:
            upload = managed.engine.upload(managed.remote.id, data)
        run = SendRun(managed, name, part, last)
        self.ledger.track(run)
        pieces = [] if upload is not None else self._pieces(data)
        final = receive_code(managed.engine.tables.receiver, key, name, view, last, upload)
        self._next(run, [piece_code(key, text) for text in pieces] + [final])
        return run

    def _pieces(self, data: bytes) -> list[str]:
        text = base64.b64encode(data).decode("ascii")
        size = whole_base64(self.settings.chunk_chars)
        return [text[i : i + size] for i in range(0, len(text), size)]

    def _next(self, run: SendRun, codes: list[str]) -> None:
        code, rest = codes[0], codes[1:]

        def then(run: StepsRun, statement: StatementRun) -> None:
            if rest:
                self._next(run, rest)
            else:
                self._done(run, statement)

        self.tables.step(run, code, then)

    def _done(self, run: StepsRun, statement: StatementRun) -> None:
        """The part is there; the last one's result says what the fabric made of the table."""
        if run.last:
            parse_sent(statement.result.text)  # raises (the run fails) if the fabric made nothing
        self.ledger.finish(run, RunState.FINISHED, statement.result)
