"""Request bodies the gateway accepts, checked as strictly as Livy's JSON parser checks them."""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from prophecy_jupyter.gateway import errors

Scalar = str | int | float | bool


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _SparkResources(_Body):
    proxyUser: str | None = None
    jars: list[str] | None = None
    pyFiles: list[str] | None = None
    files: list[str] | None = None
    archives: list[str] | None = None
    driverMemory: str | None = None
    driverCores: int | None = None
    executorMemory: str | None = None
    executorCores: int | None = None
    numExecutors: int | None = None
    queue: str | None = None
    name: str | None = None
    conf: dict[str, Scalar] | None = None

    @field_validator("conf")
    @classmethod
    def _conf_as_strings(cls, value: dict[str, Scalar] | None) -> dict[str, str] | None:
        if value is None:
            return None
        return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in value.items()}

    def spark_conf(self) -> dict[str, str]:
        """The request as Spark configuration keys (resources first, explicit conf wins)."""
        conf: dict[str, str] = {}
        pairs = [
            ("spark.driver.memory", self.driverMemory),
            ("spark.driver.cores", self.driverCores),
            ("spark.executor.memory", self.executorMemory),
            ("spark.executor.cores", self.executorCores),
            ("spark.executor.instances", self.numExecutors),
            ("spark.yarn.queue", self.queue),
            ("spark.jars", ",".join(self.jars) if self.jars else None),
            ("spark.submit.pyFiles", ",".join(self.pyFiles) if self.pyFiles else None),
            ("spark.files", ",".join(self.files) if self.files else None),
            ("spark.archives", ",".join(self.archives) if self.archives else None),
        ]
        conf.update({key: str(value) for key, value in pairs if value is not None})
        conf.update(self.conf or {})
        return conf

    def own_jvm_reason(self) -> str | None:
        """Why this request cannot run on an already running SparkContext (None if it can)."""
        fixed = (
            "jars",
            "pyFiles",
            "files",
            "archives",
            "driverMemory",
            "driverCores",
            "executorMemory",
            "executorCores",
            "numExecutors",
        )
        asked = [name for name in fixed if getattr(self, name) not in (None, [])]
        return f"{', '.join(asked)} need a JVM of their own" if asked else None


class CreateSession(_SparkResources):
    kind: str | None = None
    heartbeatTimeoutInSecond: int | None = None
    ttl: str | None = None
    idleTimeout: str | None = None
    snowflake: dict[str, Any] | None = None
    """A ``snowpark`` session's connection (the user's secret among it): handed to its interpreter
    once, never shown or kept (not a Livy field)."""


class CreateBatch(_SparkResources):
    file: str
    className: str | None = None
    args: list[str] | None = None


class CreateStatement(_Body):
    code: str
    kind: str | None = None


class Completion(_Body):
    code: str
    kind: str | None = None
    cursor: int | None = None


Model = TypeVar("Model", bound=_Body)


def parse(model: type[Model], raw: bytes) -> Model:
    """Parse a body or raise Livy's 400 with a bare-string message."""
    try:
        data: Any = json.loads(raw or b"{}")
    except ValueError as exc:
        raise errors.bad_request(f"Unexpected character in JSON: {exc}") from None
    if not isinstance(data, dict):
        raise errors.bad_request(f"Expected a JSON object for {model.__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        if first["type"] == "extra_forbidden":
            message = f'Unrecognized field "{field}" (class {model.__name__}), not marked as ignorable'
        elif first["type"] == "missing":
            message = f'Missing required field "{field}" in {model.__name__}'
        else:
            message = f'Cannot deserialize field "{field}" of {model.__name__}: {first["msg"]}'
        raise errors.bad_request(message) from None


_DURATION = re.compile(r"^\s*(\d+)\s*(us|ms|s|m|min|h|d)?\s*$")
_UNIT_SECONDS = {"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def parse_duration(value: str, field: str) -> float:
    """Livy's time strings (``10m``, ``1h``, ``30s``) in seconds; plain numbers are ms."""
    match = _DURATION.match(value)
    if not match:
        raise errors.rejected(f"Rejected, {field} '{value}' is not a valid time (e.g. 10m, 1h)")
    number, unit = int(match.group(1)), match.group(2) or "ms"
    return number * _UNIT_SECONDS[unit]
