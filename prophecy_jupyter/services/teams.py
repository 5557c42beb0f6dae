"""Teams and memberships: who may see and change which fabrics."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from prophecy_jupyter.errors import AccessDenied, Conflict, Invalid, NotFound
from prophecy_jupyter.store.database import Database
from prophecy_jupyter.store.models import Membership, Team

DEFAULT_TEAM = "default"
ADMIN, MEMBER = "admin", "member"
ROLES = (ADMIN, MEMBER)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
_USER = re.compile(r"^[^\s/]{1,128}\Z")


class Groups(Protocol):
    """Teams from outside the store (under JupyterHub: hub groups)."""

    def __call__(self, user: str) -> dict[str, str]:
        """The user's groups, as team name → role."""

    def is_group(self, name: str) -> bool:
        """Whether a team of that name is governed by a group."""


@dataclass(frozen=True)
class TeamView:
    name: str
    role: str | None
    """The asking user's role in it (``member`` through a JupyterHub group)."""

    def to_json(self) -> dict:
        return {"name": self.name, "role": self.role}


@dataclass(frozen=True)
class MemberView:
    username: str
    role: str

    def to_json(self) -> dict:
        return {"username": self.username, "role": self.role}


def check_name(name: str, what: str = "name") -> str:
    if not _NAME.match(name or ""):
        raise Invalid(
            f"{what}: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit", what
        )
    return name


class TeamService:
    """Teams in the store; under JupyterHub a user is also a member of the teams named like their hub
    groups (``groups``), and only the group's members belong to such a team."""

    def __init__(self, db: Database, groups: Groups | None = None):
        self.db = db
        self.groups = groups

    def bootstrap(self, user: str) -> None:
        """A new install gets team ``default`` with its first user as admin."""
        with self.db.transaction() as session:
            if session.scalar(select(func.count()).select_from(Team)):
                return
            team = Team(name=DEFAULT_TEAM)
            team.members.append(Membership(username=user, role=ADMIN))
            session.add(team)

    def roles(self, user: str) -> dict[str, str]:
        """Team name → the user's role: stored memberships and, under JupyterHub, hub groups (whose
        teams are created on first sight); the higher role wins. A stored membership of a team that
        a hub group governs counts only for members of the group (a team made before the group was
        cannot be squatted)."""
        outside = {}
        if self.groups is not None:
            outside = {name: role for name, role in self.groups(user).items() if _NAME.match(name)}
        if outside:
            self._ensure_teams(outside.keys())
        with self.db.transaction() as session:
            rows = session.execute(
                select(Team.name, Membership.role).join(Membership).where(Membership.username == user)
            ).all()
        roles = {name: role for name, role in rows if name in outside or not self._governed(name)}
        for name, role in outside.items():
            if roles.get(name) != ADMIN:
                roles[name] = role
        return roles

    def _governed(self, team: str) -> bool:
        return self.groups is not None and team != DEFAULT_TEAM and self.groups.is_group(team)

    def _not_governed(self, team: str) -> None:
        if self._governed(team):
            raise Conflict(
                f"Team '{team}' is a hub group's: its members are the group's (change the group on the "
                "hub), and nobody else can create or join it."
            )

    def _ensure_teams(self, names) -> None:
        try:
            with self.db.transaction() as session:
                existing = set(session.scalars(select(Team.name).where(Team.name.in_(names))))
                session.add_all(Team(name=name) for name in set(names) - existing)
        except IntegrityError:
            pass  # another server created one of them at the same moment

    def role(self, user: str, team: str) -> str | None:
        return self.roles(user).get(team)

    def require_member(self, user: str, team: str) -> str:
        role = self.role(user, team)
        if role is None:
            raise NotFound(f"No team '{team}' that you belong to.")
        return role

    def require_admin(self, user: str, team: str) -> None:
        if self.require_member(user, team) != ADMIN:
            raise AccessDenied(f"Only admins of team '{team}' can do this.")

    def teams_of(self, user: str) -> list[TeamView]:
        return [TeamView(name, role) for name, role in sorted(self.roles(user).items())]

    def create(self, user: str, name: str) -> TeamView:
        """A new team; its creator is its first admin."""
        check_name(name)
        self._not_governed(name)
        with self.db.transaction() as session:
            if session.scalar(select(Team).where(Team.name == name)) is not None:
                raise Conflict(f"Team '{name}' exists.")
            team = Team(name=name)
            team.members.append(Membership(username=user, role=ADMIN))
            session.add(team)
        return TeamView(name, ADMIN)

    def delete(self, user: str, name: str) -> None:
        self.require_admin(user, name)
        with self.db.transaction() as session:
            team = session.scalar(select(Team).where(Team.name == name))
            if team.fabrics or team.projects:
                raise Conflict(
                    f"Team '{name}' still owns {len(team.fabrics)} fabric(s) and {len(team.projects)} "
                    "project(s); remove them first (their members' credentials go with them)."
                )
            session.delete(team)

    def members(self, user: str, team: str) -> list[MemberView]:
        self.require_member(user, team)
        with self.db.transaction() as session:
            rows = session.scalars(
                select(Membership).join(Team).where(Team.name == team).order_by(Membership.username)
            )
            return [MemberView(m.username, m.role) for m in rows]

    def set_member(self, actor: str, team: str, username: str, role: str) -> MemberView:
        """Add a member or change their role (admins only; not in a team a hub group governs)."""
        self.require_admin(actor, team)
        self._not_governed(team)
        if not _USER.match(username or ""):
            raise Invalid("username: 1-128 characters, no spaces or '/'", "username")
        if role not in ROLES:
            raise Invalid(f"role: must be one of {', '.join(ROLES)}", "role")
        with self.db.transaction() as session:
            row = session.scalar(select(Team).where(Team.name == team))
            member = next((m for m in row.members if m.username == username), None)
            if member is None:
                row.members.append(Membership(username=username, role=role))
            else:
                if member.role == ADMIN and role != ADMIN:
                    self._keep_an_admin(row, username)
                member.role = role
        return MemberView(username, role)

    def remove_member(self, actor: str, team: str, username: str) -> None:
        self.require_admin(actor, team)
        self._not_governed(team)
        with self.db.transaction() as session:
            row = session.scalar(select(Team).where(Team.name == team))
            member = next((m for m in row.members if m.username == username), None)
            if member is None:
                raise NotFound(f"'{username}' is not a member of team '{team}'.")
            if member.role == ADMIN:
                self._keep_an_admin(row, username)
            row.members.remove(member)

    @staticmethod
    def _keep_an_admin(team: Team, leaving: str) -> None:
        if not any(m.role == ADMIN and m.username != leaving for m in team.members):
            raise Conflict(f"Team '{team.name}' needs at least one admin besides '{leaving}'.")
