"""Fabrics: named execution environments, kept in a registry under the data dir.

Connection settings live in ``fabrics.json``; secrets (basic-auth passwords, bearer tokens)
live only in the vault. The ``local`` fabric is always there.
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from prophecy_jupyter.paths import write_private
from prophecy_jupyter.vault.store import SecretStore

LOCAL = "local"
REGISTRY_FILE = "fabrics.json"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# Livy's session resource fields: what a job size (beside "conf") may set.
RESOURCE_FIELDS = (
    "driverMemory",
    "driverCores",
    "executorMemory",
    "executorCores",
    "numExecutors",
    "queue",
    "jars",
    "pyFiles",
    "files",
    "archives",
)
_SIZE_FIELDS = {"conf", *RESOURCE_FIELDS}


class FabricError(Exception):
    """A fabric that does not exist, or settings that are not valid."""


class Fabric(BaseModel):
    """A fabric's settings (never its secrets)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    kind: Literal["local", "livy"]
    url: str | None = None
    auth: Literal["none", "basic", "bearer", "kerberos"] = "none"
    username: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    ca_bundle: str | None = None
    conf: dict[str, str] = Field(default_factory=dict)
    """Spark settings every session on this fabric starts with."""
    job_sizes: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Named session settings (``conf`` and Livy resource fields), e.g. S, M, XL."""
    environment: Literal["dev", "staging", "prod"] = "dev"

    @field_validator("name")
    @classmethod
    def _valid_name(cls, name: str) -> str:
        if not _NAME.match(name):
            raise ValueError("use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
        return name

    @field_validator("url")
    @classmethod
    def _valid_url(cls, url: str | None) -> str | None:
        if url is not None and not re.match(r"^https?://[^\s/]+", url):
            raise ValueError("must be an http:// or https:// URL")
        return url.rstrip("/") if url else url

    @field_validator("job_sizes")
    @classmethod
    def _valid_sizes(cls, sizes: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for size, settings in sizes.items():
            unknown = set(settings) - _SIZE_FIELDS
            if unknown:
                raise ValueError(
                    f"job size {size!r} has unknown settings {sorted(unknown)}; "
                    f"allowed: {sorted(_SIZE_FIELDS)}"
                )
        return sizes

    @model_validator(mode="after")
    def _kind_settings(self) -> Fabric:
        if self.kind == "livy" and not self.url:
            raise ValueError("a livy fabric needs --url")
        if self.auth == "basic" and not self.username:
            raise ValueError("basic auth needs --username")
        return self

    @property
    def needs_secret(self) -> bool:
        return self.auth in ("basic", "bearer")

    def public(self) -> dict[str, Any]:
        """The settings as JSON (there are no secrets in them)."""
        return self.model_dump()


def local_fabric() -> Fabric:
    """The embedded fabric: local PySpark behind the gateway."""
    return Fabric(
        name=LOCAL,
        kind="local",
        job_sizes={
            "S": {"conf": {"spark.sql.shuffle.partitions": "4"}},
            "M": {"conf": {"spark.sql.shuffle.partitions": "16"}},
            "L": {"driverMemory": "4g", "conf": {"spark.sql.shuffle.partitions": "64"}},
        },
    )


def secret_name(fabric: str) -> str:
    return f"fabric:{fabric}"


def validation_message(exc: ValidationError) -> str:
    """``field: problem`` for each problem, on one line."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "fabric"
        parts.append(f"{where}: {error['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)


class FabricRegistry:
    """The fabrics of this data dir, with their secrets in the vault."""

    def __init__(self, data_dir: Path, vault: SecretStore | None = None):
        self._path = data_dir / REGISTRY_FILE
        self._data_dir = data_dir
        self._vault = vault
        self._lock = threading.Lock()

    @property
    def vault(self) -> SecretStore:
        if self._vault is None:
            self._vault = SecretStore(self._data_dir)
        return self._vault

    def _load(self) -> dict[str, Fabric]:
        if not self._path.exists():
            return {}
        try:
            raw = json.loads(self._path.read_text())
            return {name: Fabric.model_validate(data) for name, data in raw["fabrics"].items()}
        except (ValueError, KeyError, ValidationError) as exc:
            raise FabricError(f"{self._path} cannot be read ({exc}); fix or remove it.") from None

    def _save(self, fabrics: dict[str, Fabric]) -> None:
        data = {"version": 1, "fabrics": {n: f.public() for n, f in sorted(fabrics.items())}}
        write_private(self._path, json.dumps(data, indent=2).encode())

    def list(self) -> list[Fabric]:
        """Every fabric, ``local`` first."""
        return [local_fabric(), *sorted(self._load().values(), key=lambda f: f.name)]

    def get(self, name: str) -> Fabric:
        if name == LOCAL:
            return local_fabric()
        fabric = self._load().get(name)
        if fabric is None:
            known = ", ".join(f.name for f in self.list())
            raise FabricError(
                f"No fabric named '{name}' (known: {known}). Add it with `jupyter prophecy fabric add`."
            )
        return fabric

    def add(self, settings: dict[str, Any], secret: str | None = None, replace: bool = False) -> Fabric:
        """Validate and store a fabric; its secret goes to the vault."""
        try:
            fabric = Fabric.model_validate(settings)
        except ValidationError as exc:
            raise FabricError(f"Invalid fabric: {validation_message(exc)}") from None
        if fabric.name == LOCAL or fabric.kind == "local":
            raise FabricError("The local fabric is built in; give your fabric another name and kind.")
        if fabric.needs_secret and secret is None and not self.has_secret(fabric.name):
            raise FabricError(f"Fabric '{fabric.name}' uses {fabric.auth} auth: give its secret on stdin.")
        with self._lock:
            fabrics = self._load()
            if fabric.name in fabrics and not replace:
                raise FabricError(f"Fabric '{fabric.name}' exists; use --replace to change it.")
            fabrics[fabric.name] = fabric
            self._save(fabrics)
        if secret is not None:
            self.vault.put(secret_name(fabric.name), secret)
        return fabric

    def remove(self, name: str) -> None:
        if name == LOCAL:
            raise FabricError("The local fabric is built in and cannot be removed.")
        with self._lock:
            fabrics = self._load()
            if fabrics.pop(name, None) is None:
                raise FabricError(f"No fabric named '{name}'.")
            self._save(fabrics)
        self.vault.delete(secret_name(name))

    def secret(self, name: str) -> str | None:
        return self.vault.get(secret_name(name))

    def has_secret(self, name: str) -> bool:
        return self.vault.has(secret_name(name))
