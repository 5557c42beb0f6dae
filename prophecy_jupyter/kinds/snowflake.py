"""``snowflake``: one warehouse of a Snowflake account, reached with each user's own credential
(password, key pair, OAuth token or programmatic access token). Its sessions are Snowpark
sessions run by this machine's gateway (``engines/snowflake.py``): they end with the server."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Literal

from pydantic import ConfigDict, Field, ValidationInfo, field_validator

from prophecy_jupyter.engines.base import Engine
from prophecy_jupyter.engines.snowflake_connection import SECRETS, Auth, SnowflakeConnection, private_key_der
from prophecy_jupyter.errors import AuthenticationError, EngineError, Invalid
from prophecy_jupyter.kinds import network
from prophecy_jupyter.kinds.base import CheckFailed, EngineContext, FabricKind, KindSettings
from prophecy_jupyter.schedulers.snowflake_tasks import SNOWFLAKE_TASKS

_ACCOUNT = re.compile(r"^[A-Za-z0-9_.-]+\Z")
_USER = re.compile(r"^[^\s\"']{1,255}\Z")
_OBJECT = re.compile(r'^[A-Za-z_][A-Za-z0-9_$]{0,254}\Z|^"[^"]{1,255}"\Z')
_HOST = re.compile(r"^[A-Za-z0-9.-]+\Z|^\[[0-9a-fA-F:]+\]\Z")
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")


class SnowflakeSettings(KindSettings):
    """Where the fabric's warehouse is and how its users log in; each user's secret is their own."""

    account: str = Field(description="Snowflake account identifier (myorg-myaccount, or a locator)")
    user: str = Field(description="Snowflake user every member logs in as, with their own secret")
    auth: Auth = Field("password", description="password, key-pair, oauth or pat")
    role: str | None = Field(None, description="role of the session")
    warehouse: str | None = Field(None, description="warehouse queries run on")
    database: str | None = Field(None, description="default database")
    schema_name: str | None = Field(None, alias="schema", description="default schema")
    host: str | None = Field(None, description="host name instead of <account>.snowflakecomputing.com")
    port: int | None = Field(None, ge=1, le=65535, description="port (with host)")
    protocol: Literal["https", "http"] = Field("https", description="https; http only on this machine")
    login_timeout: float = Field(60.0, gt=0, le=3600, description="seconds a login may take")
    network_timeout: float | None = Field(None, gt=0, le=86400, description="seconds a request may take")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @field_validator("account")
    @classmethod
    def _account(cls, account: str) -> str:
        if not _ACCOUNT.match(account):
            raise ValueError("must be an account identifier such as myorg-myaccount")
        return account

    @field_validator("user")
    @classmethod
    def _user(cls, user: str) -> str:
        if not _USER.match(user):
            raise ValueError("must be a Snowflake login name (no spaces or quotes)")
        return user

    @field_validator("role", "warehouse", "database", "schema_name")
    @classmethod
    def _object(cls, name: str | None) -> str | None:
        if name is not None and not _OBJECT.match(name):
            raise ValueError('must be a Snowflake identifier (letters, digits, _ and $), or one in "quotes"')
        return name

    @field_validator("host")
    @classmethod
    def _host(cls, host: str | None) -> str | None:
        if host is not None and not _HOST.match(host):
            raise ValueError("must be a host name, without scheme or port")
        return host

    @field_validator("port")
    @classmethod
    def _port_with_host(cls, port: int | None, info: ValidationInfo) -> int | None:
        if port is not None and info.data.get("host") is None:
            raise ValueError("give it with host")
        return port

    @field_validator("protocol")
    @classmethod
    def _plain_http_only_here(cls, protocol: str, info: ValidationInfo) -> str:
        if protocol == "http" and info.data.get("host") not in _LOOPBACK_HOSTS:
            raise ValueError("http sends credentials and data unencrypted; only to a host on this machine")
        return protocol

    def secret_needed(self) -> str | None:
        return SECRETS[self.auth]

    def check_secret(self, secret: str) -> None:
        if self.auth == "key-pair":
            private_key_der(secret)

    def endpoint(self) -> str:
        if self.host is None:
            return f"{self.account}.snowflakecomputing.com"
        return f"{self.protocol}://{self.host}" + (f":{self.port}" if self.port else "")

    def connection(self) -> SnowflakeConnection:
        """The connection the engine and the check make (the same fields, by the same names)."""
        return SnowflakeConnection(**self.model_dump(by_alias=True))


def _check(settings: SnowflakeSettings, secret: str | None, steps: list[str], ref: str) -> str:
    """Reach the account, log in as the user, then use the role, warehouse (saying whether it is
    running, and refusing a suspended one that does not resume itself), database and schema."""
    from prophecy_jupyter.engines.snowflake_connection import connect

    url = settings.endpoint() if settings.host else f"https://{settings.endpoint()}"
    network.reach(url, None, steps)
    bare = replace(settings.connection(), role=None, warehouse=None, database=None, schema=None)
    try:
        connection = connect(bare, secret, ref)  # then each object in turn, to say which one fails
    except Invalid as exc:
        raise CheckFailed("credentials", str(exc)) from None
    except AuthenticationError as exc:
        raise CheckFailed("auth", str(exc)) from None
    except EngineError as exc:
        raise CheckFailed("tcp", str(exc)) from None
    try:
        steps.append(f"auth: {settings.user} logged in with {settings.auth}")
        for what, name in (
            ("role", settings.role),
            ("warehouse", settings.warehouse),
            ("database", settings.database),
            ("schema", settings.schema_name),
        ):
            if name is not None:
                _use(connection, what, name)
                state = _warehouse_state(connection, name) if what == "warehouse" else None
                steps.append(f"{what}: {name}" + (f" ({state})" if state else ""))
    finally:
        connection.close()
    return f"Logged in to {settings.endpoint()} as {settings.user}."


def _use(connection, what: str, name: str) -> None:
    """``USE <what> <name>``, or what is wrong with it (it does not exist, or is not granted)."""
    from snowflake.connector.errors import Error

    try:
        connection.cursor().execute(f"USE {what.upper()} {name}")  # a validated identifier
    except Error as exc:
        raise CheckFailed(
            "resource",
            f"Snowflake refused {what} {name} for {connection.user}: it does not exist, or is not granted "
            f"to the session's role ({getattr(exc, 'msg', None) or exc}).",
        ) from None


def _warehouse_state(connection, name: str) -> str | None:
    """How the warehouse is (running, or suspended and resumed by the first query), as far as the
    role may see it (None: it may not); CheckFailed when it is suspended and does not resume."""
    from snowflake.connector import DictCursor
    from snowflake.connector.errors import Error

    bare = name[1:-1] if name.startswith('"') else name.upper()
    try:
        cursor = connection.cursor(DictCursor)
        cursor.execute(f"SHOW WAREHOUSES LIKE '{bare}'")  # a validated identifier: no quote in it
        rows = [row for row in cursor.fetchall() if str(row.get("name")) == bare]
    except Error:
        return None
    if not rows:
        return None
    state = str(rows[0].get("state") or "").upper()
    resumes = str(rows[0].get("auto_resume")).lower() == "true"
    if state != "SUSPENDED":
        return state.lower() or None
    if not resumes:
        raise CheckFailed(
            "resource",
            f"Warehouse {name} is suspended and does not resume by itself (AUTO_RESUME is off): resume "
            f"it (ALTER WAREHOUSE {name} RESUME) or ask its owner to.",
        )
    return "suspended; the first query resumes it"


def _engine(settings: SnowflakeSettings, context: EngineContext) -> Engine:
    from prophecy_jupyter.engines.snowflake import SnowflakeEngine

    connect = settings.connection().connect_args(context.secret)  # checks the secret now
    return SnowflakeEngine(connect, context.local_gateway, context.ref)


SNOWFLAKE = FabricKind(
    name="snowflake",
    title="Snowflake",
    settings=SnowflakeSettings,
    check=_check,
    engine=_engine,
    warm_on_attach=True,
    ends_with_server=True,
    pipeline_code="snowpark",
    scheduler=SNOWFLAKE_TASKS,
)
