"""Projects in the store: team-owned Git repositories and each user's own token for them.

Team admins add and remove projects; every member sets their own token, sealed in the vault with
the repository's URL (it goes nowhere else). A project's tokens go with it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import select

from prophecy_jupyter.errors import Conflict, Invalid, NotFound
from prophecy_jupyter.git.providers import PROVIDERS, check_url
from prophecy_jupyter.services.credentials import CredentialService, CredentialStatus
from prophecy_jupyter.services.teams import TeamService, check_name
from prophecy_jupyter.store.database import Database
from prophecy_jupyter.store.models import ProjectRow, Team


class ProjectSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    url: str
    provider: str = "generic"
    default_branch: str = Field(default="main", pattern=r"^[A-Za-z0-9._/-]{1,255}$")

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        return check_name(name)

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        return check_url(url)

    @field_validator("provider")
    @classmethod
    def _provider(cls, provider: str) -> str:
        if provider not in PROVIDERS:
            raise ValueError(f"one of {', '.join(PROVIDERS)}")
        return provider


@dataclass(frozen=True)
class Project:
    id: str
    team: str
    name: str
    url: str
    provider: str
    default_branch: str

    @property
    def ref(self) -> str:
        return f"{self.team}/{self.name}"

    @property
    def scope(self) -> str:
        return f"project:{self.id}"

    @property
    def endpoint(self) -> str:
        """Where the user's token goes: the repository's URL."""
        return self.url

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "ref": self.ref,
            "team": self.team,
            "name": self.name,
            "url": self.url,
            "provider": self.provider,
            "default_branch": self.default_branch,
            "needs_username": PROVIDERS[self.provider].token_username is None,
        }


def _view(row: ProjectRow) -> Project:
    return Project(row.uid, row.team.name, row.name, row.url, row.provider, row.default_branch)


def by_scope(db: Database, scope: str) -> Project | None:
    """The project of a credential scope as stored before public ids (``project:<row id>``)."""
    kind, _, row_id = scope.partition(":")
    if kind != "project" or not row_id.isdigit():
        return None
    with db.transaction() as session:
        row = session.get(ProjectRow, int(row_id))
        return _view(row) if row is not None else None


def spec_of(data: Any) -> ProjectSpec:
    """A project spec, or Invalid naming the field that is wrong."""
    try:
        return ProjectSpec.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(p) for p in error["loc"])
        raise Invalid(f"{field}: {error['msg'].removeprefix('Value error, ')}", field or None) from None


def check_token(project: Project, token: str, username: str | None) -> None:
    """A token, with the account name the project's Git provider wants along with it."""
    if not token.strip():
        raise Invalid("The token is empty.", "token")
    if PROVIDERS[project.provider].token_username is None and not username:
        raise Invalid(
            f"{PROVIDERS[project.provider].title} needs your account name with the token.", "username"
        )


class ProjectRegistry:
    """The projects of each user's teams, and each user's token for them."""

    def __init__(self, db: Database, teams: TeamService, credentials: CredentialService):
        self.db = db
        self.teams = teams
        self.credentials = credentials

    def list(self, user: str) -> list[Project]:
        teams = list(self.teams.roles(user))
        with self.db.transaction() as session:
            rows = session.scalars(
                select(ProjectRow).join(Team).where(Team.name.in_(teams)).order_by(Team.name, ProjectRow.name)
            )
            return [_view(r) for r in rows]

    def get(self, user: str, ref: str) -> Project:
        """A project by id, ``team/name``, or a name only one of the user's teams uses."""
        visible = self.list(user)
        matches = [p for p in visible if ref in (p.id, p.ref)] or [p for p in visible if p.name == ref]
        if not matches:
            raise NotFound(
                f"No project '{ref}' in your teams (yours: {', '.join(p.ref for p in visible) or 'none'})."
            )
        if len(matches) > 1:
            raise Invalid(
                f"'{ref}' names projects of several teams: use {' or '.join(p.ref for p in matches)}."
            )
        return matches[0]

    def create(self, user: str, team: str, data: Any) -> Project:
        """A team's repository (team admins)."""
        self.teams.require_admin(user, team)
        spec = spec_of(data)
        with self.db.transaction() as session:
            team_row = session.scalar(select(Team).where(Team.name == team))
            if any(p.name == spec.name for p in team_row.projects):
                raise Conflict(f"Team '{team}' already has a project '{spec.name}'.")
            row = ProjectRow(team=team_row, created_by=user, **spec.model_dump())
            session.add(row)
            session.flush()
            return _view(row)

    def delete(self, user: str, ref: str) -> Project:
        """Forget a project (admins) and everyone's token for it; the repository is untouched."""
        project = self.get(user, ref)
        self.teams.require_admin(user, project.team)
        with self.db.transaction() as session:
            session.delete(session.scalar(select(ProjectRow).where(ProjectRow.uid == project.id)))
        self.credentials.delete_scope(project.scope)
        return project

    def set_token(self, user: str, ref: str, token: str, username: str | None = None) -> Project:
        """The user's own token for the project's Git server (sealed in the vault)."""
        project = self.get(user, ref)
        check_token(project, token, username)
        self.credentials.set(user, project, json.dumps({"token": token, "username": username}))
        return project

    def token(self, user: str, project: Project) -> dict[str, Any] | None:
        """The user's token and account name for git (None when not set)."""
        stored = self.credentials.secret(user, project)
        return None if stored is None else json.loads(stored)

    def token_status(self, user: str, project: Project) -> CredentialStatus:
        return self.credentials.status(user, project)

    def delete_token(self, user: str, project: Project) -> None:
        self.credentials.delete(user, project)
