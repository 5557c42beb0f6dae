"""``livy``: any Apache Livy server (basic, bearer or Kerberos auth, custom headers, CA bundles)."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from prophecy_jupyter.engines.base import RunsBatches
from prophecy_jupyter.engines.livy import LivyEngine
from prophecy_jupyter.engines.livy import LivySettings as LivyConnection
from prophecy_jupyter.errors import AuthenticationError, EngineError
from prophecy_jupyter.kinds import network
from prophecy_jupyter.kinds.base import (
    LOOPBACK_HTTP,
    CheckFailed,
    EngineContext,
    FabricKind,
    KindSettings,
    credential_headers,
    refuse_credentials,
)
from prophecy_jupyter.schedulers.airflow import AIRFLOW

_HTTP_URL = re.compile(r"^https?://[^\s/]+")


class LivySettings(KindSettings):
    url: str
    auth: Literal["none", "basic", "bearer", "kerberos"] = "none"
    username: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    ca_bundle: str | None = None
    allow_http: bool | None = None
    """Plain http to a host other than this machine (code, data and credentials unencrypted)."""
    airflow_fabric: str | None = None
    """The airflow fabric (``team/name``) its jobs are deployed to and run on."""
    airflow_connection: str | None = None
    """Airflow's connection id for this Livy server (default ``livy_default``): jobs' DAGs name it."""
    code_location: str | None = None
    """A URI prefix Livy reads jobs' pipeline code from (``hdfs:///prophecy``); by default, beside
    the DAGs in Airflow's dags folder."""

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        if not _HTTP_URL.match(url):
            raise ValueError("must be an http:// or https:// URL")
        return url.rstrip("/")

    @field_validator("headers")
    @classmethod
    def _headers(cls, headers: dict[str, str]) -> dict[str, str]:
        refuse_credentials(credential_headers(headers))
        return headers

    @model_validator(mode="after")
    def _username(self) -> LivySettings:
        if self.auth == "basic" and not self.username:
            raise ValueError("basic auth needs a username")
        if self.url.startswith("http://") and not LOOPBACK_HTTP.match(self.url) and not self.allow_http:
            raise ValueError(
                "url: plain http sends code, data and credentials unencrypted; use https, or set "
                "allow_http: true if this network is trusted"
            )
        return self

    def secret_needed(self) -> str | None:
        return {"basic": "password", "bearer": "token"}.get(self.auth)

    def endpoint(self) -> str:
        return self.url

    def shared_identity(self) -> bool:
        return self.auth == "kerberos"


def connection(settings: LivySettings, **overrides: Any) -> LivyConnection:
    """The Livy client settings of a livy fabric (``overrides``: e.g. fewer retries)."""
    return LivyConnection(
        url=settings.url,
        auth=settings.auth,
        username=settings.username,
        headers=settings.headers,
        ca_bundle=settings.ca_bundle,
        **overrides,
    )


def _engine(settings: LivySettings, context: EngineContext) -> LivyEngine:
    return LivyEngine(
        connection(settings, proxy_user=context.proxy_user), secret=context.secret, fabric_name=context.ref
    )


def _check(settings: LivySettings, secret: str | None, steps: list[str], ref: str) -> str:
    network.reach(settings.url, settings.ca_bundle, steps)
    try:
        engine = LivyEngine(connection(settings, retries=1), secret=secret, fabric_name=ref)
    except EngineError as exc:
        raise CheckFailed("credentials", str(exc)) from None
    try:
        version = engine.server_version()
        engine.list_sessions(size=1)
    except AuthenticationError as exc:
        raise CheckFailed("auth", str(exc)) from None
    except EngineError as exc:
        raise CheckFailed("http", str(exc)) from None
    finally:
        engine.close()
    shown = ".".join(map(str, version))
    steps.append(f"livy: version {shown}, sessions readable")
    return f"Connected to Livy {shown} at {settings.url}."


LIVY = FabricKind(
    name="livy",
    title="Apache Livy",
    settings=LivySettings,
    check=_check,
    engine=_engine,
    pipelines="batch",
    capabilities=(RunsBatches,),
    scheduler=AIRFLOW,
)
