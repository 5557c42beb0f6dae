"""What every fabric kind declares in one place: its settings (validated, never a secret), the
secret each user brings, how its engine is built, how its connection is checked, how its pipelines
run, and what else the product does with it. Capabilities beyond the engine protocol are the typed
protocols of ``engines.base`` (``RunsSql``, ``HasClusters``, ``RunsBatches``), checked on engines.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from prophecy_jupyter.engines.base import Engine, HasClusters, RunsBatches, RunsSql
from prophecy_jupyter.errors import EngineError
from prophecy_jupyter.schedulers.base import JobTarget

LOOPBACK_HTTP = re.compile(r"^http://(127\.0\.0\.1|localhost|\[::1\])(:\d+)?(/|\Z)")
# Fabric settings are shown to every member and stored in clear: nothing that carries a credential.
_CREDENTIAL_HEADER = re.compile(
    r"^(authorization|proxy-authorization|cookie)$|token|secret|passw|api-?key|auth", re.I
)
_CREDENTIAL_CONF = re.compile(
    r"passw|secret|token|credential|api[._-]?key|access[._-]?key|account\.key|private[._-]?key", re.I
)
CAPABILITIES: dict[str, type] = {
    "runs SQL": RunsSql,
    "has clusters": HasClusters,
    "runs batches": RunsBatches,
}


def credential_headers(headers: dict[str, str]) -> list[str]:
    """The names of headers that carry a credential."""
    return [name for name in headers if _CREDENTIAL_HEADER.search(name)]


def credential_conf(conf: dict[str, Any]) -> list[str]:
    """The Spark settings whose value is a credential."""
    return [key for key in conf if _CREDENTIAL_CONF.search(key)]


def refuse_credentials(names: list[str], where: str = "") -> None:
    """Fabric settings are shown to every member: none may hold a credential."""
    if names:
        raise ValueError(
            f"{where}{', '.join(names)} would hold a credential; fabrics hold no secrets (every member "
            "sees them): each user sets their own (`jupyter prophecy credentials set FABRIC`, or in "
            "the sidebar)"
        )


class KindSettings(BaseModel):
    """A kind's connection settings."""

    model_config = ConfigDict(extra="forbid")

    def secret_needed(self) -> str | None:
        """What each user must give (``password``, ``token``...), or None when nothing is needed."""
        return None

    def endpoint(self) -> str:
        """Where the fabric runs (and where each user's secret for it goes)."""
        raise NotImplementedError

    def check_secret(self, secret: str) -> None:
        """Raise Invalid when ``secret`` cannot be what the fabric needs (say, not a key at all),
        so that a user learns it when setting it, not at the first cell."""

    def shared_identity(self) -> bool:
        """True when the fabric is reached as this server's own identity (a Kerberos ticket, a
        ~/.databrickscfg profile), not with each user's credential."""
        return False


@dataclass(frozen=True)
class EngineContext:
    """What building an engine may use besides the fabric's settings."""

    ref: str
    """The fabric's ``team/name``, for messages."""
    secret: str | None
    """The user's own secret for the fabric."""
    proxy_user: str | None
    """Who the fabric should run the user's work as, when it can (Livy's ``proxyUser``)."""
    local_gateway: Callable[[], tuple[str, str]]
    """URL and token of this machine's gateway, started on first use."""


class CheckFailed(Exception):
    """A connection check stopped at ``stage`` (dns, tcp, tls, http, auth, resource, credentials)."""

    def __init__(self, stage: str, message: str):
        super().__init__(message)
        self.stage = stage


Check = Callable[[Any, str | None, list[str], str], str]
"""A connection check: (settings, the user's secret, the steps so far, the fabric's ref) → what
connected; raises ``CheckFailed``."""


@dataclass(frozen=True)
class FabricKind:
    """One kind of fabric. Adding a kind is one module in ``kinds/`` and one line in the registry."""

    name: str
    title: str
    settings: type[KindSettings]
    check: Check
    engine: Callable[[Any, EngineContext], Engine] | None = None
    """Builds the engine cells run on; None while cells are not supported on this kind yet."""
    built_in: bool = False
    """The kind's one fabric is built in (``local``): nobody creates or edits one."""
    warm_on_attach: bool = False
    """Start the notebook's session as soon as it is attached (cheap, and the first cell is faster)."""
    ends_with_server: bool = False
    """Its sessions end when the server stops (they run on this machine)."""
    pipelines: Literal["session", "batch"] = "session"
    """How committed pipelines run: in a session of the fabric, or as a batch the fabric schedules."""
    pipeline_code: Literal["spark", "snowpark"] = "spark"
    """What the code of its pipelines runs on: a SparkSession, or a Snowpark session."""
    capabilities: tuple[type, ...] = ()
    """What its engines can do beyond the engine protocol (``RunsSql``, ``HasClusters``,
    ``RunsBatches``): the engines it builds are instances of each."""
    scheduler: JobTarget | None = None
    """The scheduler its jobs are exported to (Snowflake tasks ...); None while there is none."""
    serves: str | None = None
    """What a fabric of this kind is for when cells never run on it (``airflow``: the scheduler
    other fabrics' jobs run on); None for kinds whose cells run, or will."""

    @property
    def runs_cells(self) -> bool:
        return self.engine is not None

    def build(self, settings: Any, context: EngineContext) -> Engine:
        """The engine for a fabric of this kind, with the user's secret."""
        if self.engine is None and self.serves:
            raise EngineError(
                f"Fabric '{context.ref}' ({self.title}) is {self.serves}: cells do not run on it. "
                "Attach the notebook to a fabric that runs cells."
            )
        if self.engine is None:
            raise EngineError(
                f"Fabric '{context.ref}' is a {self.name} fabric; running cells on {self.title} is not "
                "available in this version yet. Its settings and your credentials are kept."
            )
        return self.engine(settings, context)

    def describe(self) -> dict[str, Any]:
        """The kind as the API and the CLI list it."""
        return {
            "name": self.name,
            "title": self.title,
            "cells": "supported"
            if self.runs_cells
            else "not supported"
            if self.serves
            else "not yet supported",
            "settings": sorted(self.settings.model_fields),
            "built_in": self.built_in,
            "pipelines": self.pipelines,
            "scheduler": self.scheduler.name if self.scheduler else None,
            "capabilities": [
                name for name, protocol in CAPABILITIES.items() if protocol in self.capabilities
            ],
        }
