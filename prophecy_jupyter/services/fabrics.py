"""Fabrics: named execution environments owned by teams, with settings validated per kind.

Settings never hold secrets: each user's password or token for a fabric lives in the credentials
vault. The ``local`` fabric (embedded PySpark) is built in and usable by everyone.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy import select

from prophecy_jupyter.errors import AccessDenied, Conflict, Invalid, NotFound
from prophecy_jupyter.kinds import creatable, kind_named
from prophecy_jupyter.kinds.base import FabricKind, KindSettings, credential_conf, refuse_credentials
from prophecy_jupyter.services.credentials import CredentialService, CredentialStatus, fabric_scope
from prophecy_jupyter.services.teams import TeamService, check_name
from prophecy_jupyter.store.database import Database
from prophecy_jupyter.store.models import FabricRow, JobSize, Team

LOCAL = "local"
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


class FabricSpec(BaseModel):
    """What a team admin sends to create or change a fabric."""

    model_config = ConfigDict(extra="forbid")

    name: str
    kind: str
    settings: dict[str, Any] = Field(default_factory=dict)
    conf: dict[str, str] = Field(default_factory=dict)
    job_sizes: dict[str, dict[str, Any]] = Field(default_factory=dict)
    environment: Literal["dev", "staging", "prod"] = "dev"

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        check_name(name)
        if name == LOCAL:
            raise ValueError("'local' is the built-in fabric; choose another name")
        return name

    @field_validator("kind")
    @classmethod
    def _kind(cls, kind: str) -> str:
        if kind not in creatable():
            raise ValueError(f"one of {', '.join(creatable())}")
        return kind

    @field_validator("conf")
    @classmethod
    def _conf(cls, conf: dict[str, str]) -> dict[str, str]:
        refuse_credentials(credential_conf(conf))
        return conf

    @field_validator("job_sizes")
    @classmethod
    def _sizes(cls, sizes: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for size, settings in sizes.items():
            unknown = set(settings) - _SIZE_FIELDS
            if unknown:
                raise ValueError(
                    f"size {size!r} has unknown settings {sorted(unknown)}; allowed: {sorted(_SIZE_FIELDS)}"
                )
            conf = settings.get("conf") or {}
            if not isinstance(conf, dict):
                raise ValueError(f"size {size!r}: conf must be an object of Spark settings")
            refuse_credentials(credential_conf(conf), f"size {size!r}: ")
        return sizes

    @model_validator(mode="after")
    def _settings(self) -> FabricSpec:
        model = kind_named(self.kind).settings
        try:
            self.settings = model.model_validate(self.settings).model_dump(by_alias=True, exclude_none=True)
        except ValidationError as exc:
            raise ValueError(_describe(exc, "settings")) from None
        return self


class Fabric(BaseModel):
    """A fabric as the services and surfaces see it (settings only, never secrets)."""

    id: str
    team: str | None
    name: str
    kind: str
    settings: dict[str, Any] = Field(default_factory=dict)
    conf: dict[str, str] = Field(default_factory=dict)
    job_sizes: dict[str, dict[str, Any]] = Field(default_factory=dict)
    environment: str = "dev"
    created_by: str | None = None
    updated_at: datetime.datetime | None = None

    @field_validator("updated_at")
    @classmethod
    def _utc(cls, value: datetime.datetime | None) -> datetime.datetime | None:
        """The store keeps UTC without a zone; say so."""
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=datetime.UTC)
        return value

    @property
    def ref(self) -> str:
        """``team/name``, or ``local``."""
        return f"{self.team}/{self.name}" if self.team else self.name

    @property
    def kind_of(self) -> FabricKind:
        """What the product does with fabrics of this one's kind."""
        return kind_named(self.kind)

    @property
    def typed_settings(self) -> KindSettings:
        return self.kind_of.settings.model_validate(self.settings)

    @property
    def secret_needed(self) -> str | None:
        return self.typed_settings.secret_needed()

    @property
    def scope(self) -> str:
        return fabric_scope(self.id)

    @property
    def shared_identity(self) -> bool:
        """Reached as the server's own identity rather than each user's credential."""
        return self.typed_settings.shared_identity()

    @property
    def endpoint(self) -> str:
        """Where the fabric runs: its URL, workspace or account (a user's secret goes only there)."""
        return self.typed_settings.endpoint()

    @property
    def version(self) -> str:
        """Changes whenever the settings change (engines built from old settings are dropped)."""
        return f"{self.id}@{self.updated_at.isoformat() if self.updated_at else '0'}"

    def to_json(self) -> dict[str, Any]:
        return {
            **self.model_dump(mode="json"),
            "ref": self.ref,
            "endpoint": self.endpoint,
            "shared_identity": self.shared_identity,
            "warm_on_attach": self.kind_of.warm_on_attach,
        }


def local_fabric() -> Fabric:
    """The embedded fabric: local PySpark behind the gateway."""
    return Fabric(
        id=LOCAL,
        team=None,
        name=LOCAL,
        kind="local",
        job_sizes={
            "S": {"conf": {"spark.sql.shuffle.partitions": "4"}},
            "M": {"conf": {"spark.sql.shuffle.partitions": "16"}},
            "L": {"driverMemory": "4g", "conf": {"spark.sql.shuffle.partitions": "64"}},
        },
    )


def _describe(exc: ValidationError, prefix: str | None = None) -> str:
    """``field: problem`` for each problem, on one line."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"])
        if prefix:
            where = f"{prefix}.{where}" if where else prefix
        message = error["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)


def _row(session, fabric_id: str) -> FabricRow:
    return session.scalar(select(FabricRow).where(FabricRow.uid == fabric_id))


def by_scope(db: Database, scope: str) -> Fabric | None:
    """The fabric of a credential scope as stored before public ids (``fabric:<row id>``)."""
    kind, _, row_id = scope.partition(":")
    if kind != "fabric" or not row_id.isdigit():
        return None
    with db.transaction() as session:
        row = session.get(FabricRow, int(row_id))
        return _view(row) if row is not None else None


def parse_spec(data: Any) -> FabricSpec:
    """A fabric spec, or Invalid naming the field that is wrong."""
    if not isinstance(data, dict):
        raise Invalid("The fabric must be a JSON object.")
    try:
        return FabricSpec.model_validate(data)
    except ValidationError as exc:
        description = _describe(exc)
        raise Invalid(f"Invalid fabric: {description}", description.split(":", 1)[0]) from None


def _view(row: FabricRow) -> Fabric:
    return Fabric(
        id=row.uid,
        team=row.team.name,
        name=row.name,
        kind=row.kind,
        settings=row.settings,
        conf=row.conf,
        job_sizes={s.name: s.settings for s in row.job_sizes},
        environment=row.environment,
        created_by=row.created_by,
        updated_at=row.updated_at,
    )


@dataclass(frozen=True)
class SharedIdentities:
    """Who may use a fabric reached as the server's own identity: its owner, and everyone else only
    when the deployment allows it (on a server that serves several people, they would all act as
    the owner there)."""

    owner: str | None = None
    allowed: bool = True

    def check(self, user: str, fabric: Fabric) -> None:
        if fabric.shared_identity and not self.allowed and user != self.owner:
            raise AccessDenied(
                f"Fabric '{fabric.ref}' is reached as this server's own identity "
                f"({fabric.settings.get('auth')}), not yours; an admin must allow shared identities "
                "(c.ProphecyJupyter.allow_shared_identities = True) for you to use it."
            )


class FabricService:
    """Fabrics of the teams a user belongs to; team admins change them."""

    def __init__(
        self,
        db: Database,
        teams: TeamService,
        credentials: CredentialService,
        shared: SharedIdentities | None = None,
    ):
        self.db = db
        self.teams = teams
        self.credentials = credentials
        self.shared = shared or SharedIdentities()

    def list(self, user: str) -> list[Fabric]:
        """Every fabric the user may use, ``local`` first."""
        teams = list(self.teams.roles(user))
        with self.db.transaction() as session:
            rows = session.scalars(
                select(FabricRow).join(Team).where(Team.name.in_(teams)).order_by(Team.name, FabricRow.name)
            )
            return [local_fabric(), *(_view(r) for r in rows)]

    def get(self, user: str, ref: str) -> Fabric:
        """A fabric by id, ``team/name`` or a name that only one of the user's teams uses."""
        if ref == LOCAL:
            return local_fabric()
        visible = self.list(user)
        matches = [f for f in visible if ref in (f.id, f.ref)] or [f for f in visible if f.name == ref]
        if not matches:
            known = ", ".join(f.ref for f in visible)
            raise NotFound(f"No fabric '{ref}' in your teams (yours: {known}).")
        if len(matches) > 1:
            raise Invalid(
                f"'{ref}' names fabrics of several teams: use {' or '.join(f.ref for f in matches)}."
            )
        return matches[0]

    def create(self, user: str, team: str, data: Any) -> Fabric:
        self.teams.require_admin(user, team)
        spec = parse_spec(data)
        with self.db.transaction() as session:
            team_row = session.scalar(select(Team).where(Team.name == team))
            if any(f.name == spec.name for f in team_row.fabrics):
                raise Conflict(f"Team '{team}' already has a fabric '{spec.name}'.")
            row = FabricRow(team=team_row, created_by=user, **self._columns(spec))
            row.job_sizes = [JobSize(name=n, settings=s) for n, s in spec.job_sizes.items()]
            session.add(row)
            session.flush()
            return _view(row)

    def update(self, user: str, ref: str, data: Any) -> Fabric:
        """Change a fabric (admins of its team): the body is a whole spec, or the fields to change."""
        fabric = self._admin_fabric(user, ref)
        if not isinstance(data, dict):
            raise Invalid("The change must be a JSON object.")
        current = {
            "name": fabric.name,
            "kind": fabric.kind,
            "settings": fabric.settings,
            "conf": fabric.conf,
            "job_sizes": fabric.job_sizes,
            "environment": fabric.environment,
        }
        spec = parse_spec({**current, **data})
        if spec.kind != fabric.kind:
            raise Invalid("kind: a fabric's kind cannot change; create a new fabric", "kind")
        with self.db.transaction() as session:
            row = _row(session, fabric.id)
            if spec.name != row.name and any(f.name == spec.name for f in row.team.fabrics):
                raise Conflict(f"Team '{fabric.team}' already has a fabric '{spec.name}'.")
            for key, value in self._columns(spec).items():
                setattr(row, key, value)
            row.job_sizes = [JobSize(name=n, settings=s) for n, s in spec.job_sizes.items()]
            session.flush()
            return _view(row)

    def delete(self, user: str, ref: str) -> None:
        """Remove a fabric and every user's credential for it."""
        fabric = self._admin_fabric(user, ref)
        with self.db.transaction() as session:
            session.delete(_row(session, fabric.id))
        self.credentials.delete_scope(fabric.scope)

    def secret_fabric(self, user: str, ref: str) -> Fabric:
        """A fabric the user brings a secret for (Invalid when its settings need none)."""
        fabric = self.get(user, ref)
        if not fabric.secret_needed:
            raise Invalid(f"Fabric '{fabric.ref}' takes no secret with its settings.")
        return fabric

    def set_secret(self, user: str, ref: str, secret: str) -> tuple[Fabric, CredentialStatus]:
        """Store the user's own secret for the fabric (write-only)."""
        fabric = self.secret_fabric(user, ref)
        fabric.typed_settings.check_secret(secret)
        return fabric, self.credentials.set(user, fabric, secret)

    def confirm_secret(self, user: str, ref: str) -> tuple[Fabric, CredentialStatus]:
        """Let the user's secret go to the fabric's new endpoint."""
        fabric = self.secret_fabric(user, ref)
        return fabric, self.credentials.confirm(user, fabric)

    def delete_secret(self, user: str, ref: str) -> bool:
        """Forget the user's secret for the fabric; whether there was one."""
        return self.credentials.delete(user, self.get(user, ref))

    def on_secret_change(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(scope)`` when a secret is set or deleted through this service."""
        self.credentials.on_change(listener)

    def credential_status(self, user: str, fabric: Fabric) -> CredentialStatus | None:
        """Whether the user has set their secret for the fabric; None when it needs none."""
        return self.credentials.status(user, fabric) if fabric.secret_needed else None

    def secret(self, user: str, fabric: Fabric) -> str | None:
        """The user's own secret for the fabric (for engines only); AccessDenied when the fabric
        is reached as the server's identity and the user may not use that."""
        self.shared.check(user, fabric)
        return self.credentials.secret(user, fabric) if fabric.secret_needed else None

    def secret_set_at(self, user: str, fabric: Fabric) -> datetime.datetime | None:
        """When the user last set (or confirmed) their secret for the fabric (None: never, or
        none needed)."""
        if not fabric.secret_needed:
            return None
        return self.credentials.status(user, fabric).updated_at

    def _admin_fabric(self, user: str, ref: str) -> Fabric:
        fabric = self.get(user, ref)
        if fabric.team is None:
            raise Invalid("The local fabric is built in and cannot be changed.")
        self.teams.require_admin(user, fabric.team)
        return fabric

    @staticmethod
    def _columns(spec: FabricSpec) -> dict[str, Any]:
        return {
            "name": spec.name,
            "kind": spec.kind,
            "settings": spec.settings,
            "conf": spec.conf,
            "environment": spec.environment,
        }
