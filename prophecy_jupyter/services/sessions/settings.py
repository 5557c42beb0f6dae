"""What ``%%configure`` may set for a notebook's session (``SessionSettings``), checked field by
field."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from prophecy_jupyter.errors import Invalid


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
