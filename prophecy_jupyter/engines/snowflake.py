"""Snowflake fabrics: a session is an interpreter process on this machine's gateway holding a
Snowpark ``Session`` logged in as the user. Python cells run there with ``session`` bound and keep
their state; SQL runs through the same connection and its rows come back as Arrow, typed by
Snowflake's column types. The gateway speaks Livy, so statements are sent, polled (long-polled),
cancelled and read exactly as on the local fabric; only the session is opened differently: with
kind ``snowpark`` and the user's connection, which the gateway hands to the interpreter once.
Under Snowpark's local testing the connection is ``LOCAL_TESTING``: no account is reached, and
DataFrame code runs in Snowpark's emulator on this machine.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from prophecy_jupyter.engines.base import RemoteSession, SessionSpec, StatementStatus
from prophecy_jupyter.engines.livy import LivyEngine, LivySettings
from prophecy_jupyter.results.transport import SNOWPARK_TABLES

LOCAL_TESTING: dict[str, Any] = {"local_testing": True}
"""The connection of a session under Snowpark's local testing: no account, DataFrames emulated here."""


class SnowflakeEngine:
    """One user's Snowpark sessions on a fabric's warehouse, run by the local gateway (spoken to
    through a Livy client; batches and the rest of Livy are not offered)."""

    name = "snowflake"
    poll_policy = None  # the gateway long-polls
    tables = SNOWPARK_TABLES

    def __init__(self, connect: dict[str, Any], gateway: Callable[[], tuple[str, str]], fabric_name: str):
        """``connect``: the connector's arguments for the user (``SnowflakeConnection.connect_args``),
        or ``LOCAL_TESTING``; ``gateway``: where the local gateway is (started if need be)."""
        url, token = gateway()
        settings = LivySettings(url=url, auth="bearer")
        self._livy = _SnowparkSessions(wire_args(connect), settings, token, fabric_name, gateway)

    @property
    def supports_long_poll(self) -> bool:
        return self._livy.supports_long_poll

    def prepare(self, notify: Callable[[str], None], timeout: float) -> None:
        self._livy.prepare(notify, timeout)

    def open_session(self, spec: SessionSpec) -> RemoteSession:
        return self._livy.open_session(spec)

    def session(self, session_id: str, wait: float = 0.0) -> RemoteSession:
        return self._livy.session(session_id, wait)

    def submit(self, session_id: str, code: str, kind: str, run_id: str) -> StatementStatus:
        return self._livy.submit(session_id, code, kind, run_id)

    def poll(self, session_id: str, statement_id: str, wait: float = 0.0) -> StatementStatus:
        return self._livy.poll(session_id, statement_id, wait)

    def cancel(self, session_id: str, statement_id: str) -> None:
        self._livy.cancel(session_id, statement_id)

    def complete(self, session_id: str, code: str, cursor: int, kind: str) -> list[str]:
        return self._livy.complete(session_id, code, cursor, kind)

    def logs(self, session_id: str, size: int = 100) -> list[str]:
        return self._livy.logs(session_id, size)

    def keepalive(self, session_id: str) -> None:
        self._livy.keepalive(session_id)

    def close_session(self, session_id: str) -> None:
        self._livy.close_session(session_id)

    def upload(self, session_id: str, data: bytes) -> str | None:
        return self._livy.upload(session_id, data)

    def close(self) -> None:
        self._livy.close()


class _SnowparkSessions(LivyEngine):
    """The gateway's Livy API, opening ``snowpark`` sessions with the user's connection."""

    def __init__(
        self,
        connect: dict[str, Any],
        settings: LivySettings,
        token: str,
        fabric_name: str,
        locate: Callable[[], tuple[str, str]],
    ):
        super().__init__(settings, secret=token, fabric_name=fabric_name, locate=locate)
        self._connect = connect

    def session_body(self, spec: SessionSpec) -> tuple[dict[str, Any], list[str]]:
        """A ``snowpark`` session with the user's connection; Spark settings do not apply."""
        body: dict[str, Any] = {"kind": "snowpark", "snowflake": self._connect}
        if spec.name:
            body["name"] = spec.name
        notes = []
        ignored = sorted({*spec.conf, *spec.resources})
        if ignored:
            notes.append(f"Spark settings do not apply to a Snowflake session: {', '.join(ignored)} ignored.")
        return body, notes


def wire_args(args: dict[str, Any]) -> dict[str, Any]:
    """The connector's arguments as JSON: a private key's DER bytes travel in base64 (the
    interpreter turns them back)."""
    key = args.get("private_key")
    if isinstance(key, bytes):
        args = {**args, "private_key": base64.b64encode(key).decode("ascii")}
    return args
