"""How the session service behaves (``ServiceSettings``), and what ``%%configure`` may set for a
notebook's session (``SessionSettings``), checked field by field."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from prophecy_jupyter.engines.base import PollPolicy
from prophecy_jupyter.errors import Invalid
from prophecy_jupyter.results.transport import DEFAULT_CHUNK_CHARS


@dataclass(frozen=True)
class ServiceSettings:
    poll: PollPolicy = field(default_factory=PollPolicy)
    """How often statements are checked on engines that say nothing of their own."""
    startup_timeout: float = 600.0
    health_interval: float = 2.0
    keepalive_interval: float = 300.0
    idle_close_after: float = 3600.0
    poll_failure_budget: float = 60.0
    max_sessions_per_user: int = 10
    """Live sessions a user may have at once (0: no limit)."""
    finished_runs_kept: float = 600.0
    workers: int = 64
    """Threads that send and poll statements and fetch tables (created as needed; a long poll
    holds one)."""
    tick_interval: float = 0.5
    chunk_chars: int = DEFAULT_CHUNK_CHARS
    max_table_rows: int | None = None
    """Rows a table result keeps at most, whatever its ``limit`` (None: no cap, as in a kernel)."""
    max_buffered_bytes: int | None = None
    """Table results a user may have waiting in this process (None: no cap)."""
    fetched_tables_kept: float = 60.0
    """Seconds a table result stays once fetched (a retried fetch finds it)."""
    proxy_users: Mapping[str, str] | None = None
    """On Livy fabrics, sessions run as the user (``proxyUser``), mapped through this (a user
    not in it runs as their own name); None: as the fabric's credential says."""


class SessionSettings(BaseModel):
    """What ``%%configure`` may set for a notebook's session (named as Livy's session fields)."""

    model_config = ConfigDict(extra="forbid")

    conf: dict[str, str] = Field(default_factory=dict)
    size: str | None = None
    kind: Literal["pyspark", "python", "sql", "spark", "scala", "sparkr", "r"] | None = None
    driverMemory: str | None = None
    driverCores: int | None = Field(default=None, ge=1)
    executorMemory: str | None = None
    executorCores: int | None = Field(default=None, ge=1)
    numExecutors: int | None = Field(default=None, ge=1)
    queue: str | None = None
    jars: list[str] | None = None
    pyFiles: list[str] | None = None
    files: list[str] | None = None
    archives: list[str] | None = None

    @field_validator("conf", mode="before")
    @classmethod
    def _conf_values(cls, conf: Any) -> Any:
        """Spark settings are text; numbers and true/false are taken as their text."""
        if not isinstance(conf, dict):
            return conf
        for key, value in conf.items():
            if not isinstance(value, (str, int, float, bool)):
                raise ValueError(f"{key}: a Spark setting is text, a number or true/false")
        return {
            key: str(value).lower() if isinstance(value, bool) else str(value) for key, value in conf.items()
        }


def session_settings(settings: Any) -> dict[str, Any]:
    """``%%configure`` settings checked field by field; Invalid names the first wrong one."""
    if not isinstance(settings, dict):
        raise Invalid('Session settings are a JSON object, e.g. {"conf": {...}, "size": "M"}.', "settings")
    try:
        checked = SessionSettings.model_validate(settings)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = f"not a session setting; use {', '.join(SessionSettings.model_fields)}"
        raise Invalid(f"Session setting {where}: {message}", f"settings.{where}") from None
    return checked.model_dump(exclude_none=True)
