"""Thin tornado handlers for Livy's REST routes."""

from __future__ import annotations

import base64
import binascii
import getpass
import json
import math
import secrets
from typing import Any

from tornado import web

from prophecy_jupyter._version import __version__
from prophecy_jupyter.gateway import errors
from prophecy_jupyter.gateway.batches import BatchManager
from prophecy_jupyter.gateway.bodies import (
    Completion,
    CreateBatch,
    CreateSession,
    CreateStatement,
    parse,
)
from prophecy_jupyter.gateway.config import LIVY_VERSION, GatewayConfig
from prophecy_jupyter.gateway.sessions import RUNNING_STATES, Session, SessionManager, Statement
from prophecy_jupyter.results.sending import ARROW_STREAM

MAX_LONG_POLL = 30.0
CSRF_PAGE = (
    "<html><head><title>Error 400 Missing Required Header for CSRF protection.</title></head>"
    "<body><h2>HTTP ERROR 400</h2><p>Missing Required Header for CSRF protection.</p></body></html>"
)


class LivyHandler(web.RequestHandler):
    """Authentication, CSRF check and Livy-shaped JSON errors for every route."""

    @property
    def config(self) -> GatewayConfig:
        return self.application.settings["gateway_config"]

    @property
    def sessions(self) -> SessionManager:
        return self.application.settings["session_manager"]

    @property
    def batches(self) -> BatchManager:
        return self.application.settings["batch_manager"]

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json; charset=UTF-8")

    def prepare(self) -> None:
        if self.config.auth_token and not self._authenticated(self.config.auth_token):
            self.set_header("WWW-Authenticate", 'Bearer realm="livy"')
            raise errors.LivyError(401, "Authentication required: send the gateway's token")
        needs_header = self.request.method not in ("GET", "HEAD", "OPTIONS")
        if self.config.csrf_protection and needs_header and "X-Requested-By" not in self.request.headers:
            self.set_status(400)
            self.set_header("Content-Type", "text/html; charset=UTF-8")
            self.finish(CSRF_PAGE)

    def _authenticated(self, token: str) -> bool:
        """Bearer or basic (any user name) with the gateway's token; compared as bytes, so any
        text a client sends is merely wrong, never an error."""
        header = self.request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer":
            given = value.strip()
        elif scheme.lower() == "basic":
            try:
                _, _, given = base64.b64decode(value).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError, ValueError):
                return False
        else:
            return False
        return secrets.compare_digest(given.encode("utf-8", "surrogateescape"), token.encode())

    def write_json(self, body: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(body))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, errors.LivyError):
            body: Any = exc.body
        elif isinstance(exc, web.HTTPError):
            body = {"msg": exc.log_message or self._reason}
        else:
            body = {"msg": f"{type(exc).__name__}: {exc}" if exc else self._reason}
        self.finish(json.dumps(body))

    def log_exception(self, typ, value, tb) -> None:
        if not isinstance(value, errors.LivyError):
            super().log_exception(typ, value, tb)

    def send_error(self, status_code: int = 500, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, errors.LivyError):
            status_code = exc.status
        super().send_error(status_code, **kwargs)

    def int_argument(self, name: str, default: int | None) -> int | None:
        raw = self.get_query_argument(name, None)
        if raw is None:
            return default
        try:
            return int(raw)
        except ValueError:
            raise errors.bad_request(f"Query parameter {name} must be an integer") from None

    def write_listing(self, items) -> None:
        """``GET /sessions`` and ``GET /batches``: ``{from, total, sessions}`` (both say sessions)."""
        start = self.int_argument("from", 0) or 0
        size = self.int_argument("size", 100)
        ordered = sorted(items, key=lambda item: item.id)
        listed = page(ordered, start, size)
        self.write_json({"from": start, "total": len(ordered), "sessions": [i.to_json() for i in listed]})

    def wait_seconds(self) -> float | None:
        """``?wait=SECONDS`` (our extension), at most ``MAX_LONG_POLL``; None when not asked for or
        when long polls are off."""
        wait = self.get_query_argument("wait", None)
        if wait is None or not self.config.long_poll:
            return None
        try:
            seconds = float(wait)
        except ValueError:
            seconds = math.nan
        if math.isnan(seconds):
            raise errors.bad_request("Query parameter wait must be a number")
        return min(seconds, MAX_LONG_POLL)

    async def long_poll(self, subject: Session | Statement) -> None:
        """With ``?wait=SECONDS``, answer once the subject changes or time is up."""
        seconds = self.wait_seconds()
        if seconds is not None:
            await self.sessions.wait_for_change(subject, seconds)

    def session(self, key: str) -> Session:
        session = self.sessions.get(key)
        session.touch()
        return session

    def do_as(self) -> str | None:
        return self.get_query_argument("doAs", None)


def page(items: list[Any], start: int, size: int) -> list[Any]:
    return items[start : start + size] if size >= 0 else items[start:]


class VersionHandler(LivyHandler):
    def get(self) -> None:
        self.write_json(
            {
                "version": LIVY_VERSION,
                "user": getpass.getuser(),
                "revision": f"prophecy-jupyter-{__version__}",
                "branch": "main",
                "date": "",
                "url": "",
                "prophecyGateway": {
                    "version": __version__,
                    "longPoll": self.config.long_poll,
                    "isolation": self.config.isolation,
                    "uploads": self.config.uploads,
                },
            }
        )


class SessionsHandler(LivyHandler):
    def get(self) -> None:
        self.write_listing(self.sessions.sessions.values())

    async def post(self) -> None:
        request = parse(CreateSession, self.request.body)
        session = await self.sessions.create(request, owner=None, do_as=self.do_as())
        self.set_header("Location", f"/sessions/{session.id}")
        self.write_json(session.to_json(), status=201)


class SessionHandler(LivyHandler):
    async def get(self, key: str) -> None:
        session = self.session(key)
        await self.long_poll(session)
        self.write_json(session.to_json())

    async def delete(self, key: str) -> None:
        await self.sessions.delete(self.session(key))
        self.write_json({"msg": "deleted"})


class SessionStateHandler(LivyHandler):
    async def get(self, key: str) -> None:
        session = self.session(key)
        await self.long_poll(session)
        self.write_json({"id": session.id, "state": session.state})


class SessionLogHandler(LivyHandler):
    def get(self, key: str) -> None:
        session = self.session(key)
        size = self.int_argument("size", 100)
        self.write_json(session.log.to_json(session.id, self.int_argument("from", None), size))


class StatementsHandler(LivyHandler):
    def get(self, key: str) -> None:
        session = self.session(key)
        statements = list(session.statements.values())
        if self.get_query_argument("order", "") == "desc":
            statements.reverse()
        start = self.int_argument("from", 0) or 0
        size = self.int_argument("size", -1)
        self.write_json(
            {
                "total_statements": len(statements),
                "statements": [s.to_json() for s in page(statements, start, size)],
            }
        )

    async def post(self, key: str) -> None:
        """Queue a statement. With ``?wait=SECONDS`` the answer comes once it has finished or time
        is up, so a short statement takes one request."""
        session = self.session(key)
        request = parse(CreateStatement, self.request.body)
        seconds = self.wait_seconds()
        snapshot = self.sessions.submit(session, request.code, request.kind)
        if seconds is not None:
            statement = self.sessions.statement(session, str(snapshot["id"]))
            await self.sessions.wait_for_end(session, statement, seconds)
            snapshot = statement.to_json()
        self.set_header("Location", f"/sessions/{session.id}/statements/{snapshot['id']}")
        self.write_json(snapshot, status=201)


class UploadsHandler(LivyHandler):
    """Our extension: a table's Arrow bytes for the session's interpreter, kept as a file it alone
    is told about; the statement that reads them names the upload."""

    def post(self, key: str) -> None:
        if not self.config.uploads:
            raise errors.LivyError(404, f"No route for {self.request.method} {self.request.path}")
        session = self.session(key)
        if session.state not in RUNNING_STATES:
            raise errors.not_running(session.state)
        if self.request.headers.get("Content-Type", "") != ARROW_STREAM:
            raise errors.rejected(f"Rejected, an upload is sent as {ARROW_STREAM}")
        name = self.sessions.uploads.keep(session.id, self.request.body)
        self.write_json({"upload": name}, status=201)


class StatementHandler(LivyHandler):
    async def get(self, key: str, statement_id: str) -> None:
        session = self.session(key)
        statement = self.sessions.statement(session, statement_id)
        await self.long_poll(statement)
        self.write_json(statement.to_json())


class StatementCancelHandler(LivyHandler):
    def post(self, key: str, statement_id: str) -> None:
        self.sessions.cancel(self.session(key), statement_id)
        self.write_json({"msg": "canceled"})


class CompletionHandler(LivyHandler):
    async def post(self, key: str) -> None:
        session = self.session(key)
        request = parse(Completion, self.request.body)
        cursor = len(request.code) if request.cursor is None else request.cursor
        candidates = await self.sessions.complete(session, request.code, request.kind, cursor)
        self.write_json({"candidates": candidates})


class BatchesHandler(LivyHandler):
    def get(self) -> None:
        self.write_listing(self.batches.batches.values())

    def post(self) -> None:
        request = parse(CreateBatch, self.request.body)
        batch = self.batches.create(request, owner=None, do_as=self.do_as())
        self.set_header("Location", f"/batches/{batch.id}")
        self.write_json(batch.to_json(), status=201)


class BatchHandler(LivyHandler):
    def get(self, key: str) -> None:
        self.write_json(self.batches.get(key).to_json())

    async def delete(self, key: str) -> None:
        await self.batches.delete(self.batches.get(key))
        self.write_json({"msg": "deleted"})


class BatchStateHandler(LivyHandler):
    def get(self, key: str) -> None:
        batch = self.batches.get(key)
        self.write_json({"id": batch.id, "state": batch.state})


class BatchLogHandler(LivyHandler):
    def get(self, key: str) -> None:
        batch = self.batches.get(key)
        size = self.int_argument("size", 100)
        self.write_json(batch.log.to_json(batch.id, self.int_argument("from", None), size))


class NotFoundHandler(LivyHandler):
    def prepare(self) -> None:
        super().prepare()
        if not self._finished:
            raise errors.LivyError(404, f"No route for {self.request.method} {self.request.path}")


ROUTES = [
    (r"/version", VersionHandler),
    (r"/sessions", SessionsHandler),
    (r"/sessions/([^/]+)", SessionHandler),
    (r"/sessions/([^/]+)/state", SessionStateHandler),
    (r"/sessions/([^/]+)/log", SessionLogHandler),
    (r"/sessions/([^/]+)/statements", StatementsHandler),
    (r"/sessions/([^/]+)/uploads", UploadsHandler),
    (r"/sessions/([^/]+)/statements/([^/]+)", StatementHandler),
    (r"/sessions/([^/]+)/statements/([^/]+)/cancel", StatementCancelHandler),
    (r"/sessions/([^/]+)/completion", CompletionHandler),
    (r"/batches", BatchesHandler),
    (r"/batches/([^/]+)", BatchHandler),
    (r"/batches/([^/]+)/state", BatchStateHandler),
    (r"/batches/([^/]+)/log", BatchLogHandler),
]
