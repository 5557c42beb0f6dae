"""The tables. SQLite under the data dir by default; any SQLAlchemy URL for shared deployments."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


def new_uid() -> str:
    """A public id: random, so it is never used twice (row ids may be)."""
    return uuid.uuid4().hex


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON}


class Team(Base):
    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime.datetime] = mapped_column(default=utcnow)

    members: Mapped[list[Membership]] = relationship(back_populates="team", cascade="all, delete-orphan")
    fabrics: Mapped[list[FabricRow]] = relationship(back_populates="team", cascade="all, delete-orphan")
    projects: Mapped[list[ProjectRow]] = relationship(back_populates="team", cascade="all, delete-orphan")


class Membership(Base):
    __tablename__ = "memberships"

    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True)
    username: Mapped[str] = mapped_column(String(128), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))

    team: Mapped[Team] = relationship(back_populates="members")


class FabricRow(Base):
    __tablename__ = "fabrics"
    __table_args__ = (UniqueConstraint("team_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True, default=new_uid)
    """The id everyone sees (``Fabric.id``)."""
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    conf: Mapped[dict[str, Any]] = mapped_column(default=dict)
    environment: Mapped[str] = mapped_column(String(16), default="dev")
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    team: Mapped[Team] = relationship(back_populates="fabrics")
    job_sizes: Mapped[list[JobSize]] = relationship(cascade="all, delete-orphan", order_by="JobSize.name")


class JobSize(Base):
    __tablename__ = "job_sizes"

    fabric_id: Mapped[int] = mapped_column(ForeignKey("fabrics.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)


class ProjectRow(Base):
    """A team's Git repository: pipelines and job definitions live there."""

    __tablename__ = "projects"
    __table_args__ = (UniqueConstraint("team_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True, default=new_uid)
    """The id everyone sees (``Project.id``)."""
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(String(1024))
    provider: Mapped[str] = mapped_column(String(32))
    default_branch: Mapped[str] = mapped_column(String(255))
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime.datetime] = mapped_column(default=utcnow)

    team: Mapped[Team] = relationship(back_populates="projects")


class Credential(Base):
    """A user's secret for one scope (``fabric:<id>`` or ``project:<id>``), sealed with AES-GCM
    together with the endpoint it was given for."""

    __tablename__ = "credentials"

    username: Mapped[str] = mapped_column(String(128), primary_key=True)
    scope: Mapped[str] = mapped_column(String(160), primary_key=True)
    endpoint: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    """None only for a credential stored before endpoints were recorded (bound at start-up)."""
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    key_id: Mapped[str] = mapped_column(String(16))
    updated_at: Mapped[datetime.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Attachment(Base):
    """Which fabric a user's notebook is attached to."""

    __tablename__ = "attachments"

    username: Mapped[str] = mapped_column(String(128), primary_key=True)
    notebook: Mapped[str] = mapped_column(String(1024), primary_key=True)
    fabric: Mapped[str] = mapped_column(String(160))
    updated_at: Mapped[datetime.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SessionRow(Base):
    """A remote session the server keeps for a user's notebook, so it can be found again."""

    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    username: Mapped[str] = mapped_column(String(128), index=True)
    notebook: Mapped[str] = mapped_column(String(1024))
    fabric: Mapped[str] = mapped_column(String(160))
    remote_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    state: Mapped[str] = mapped_column(String(32))
    spec: Mapped[dict[str, Any]] = mapped_column(default=dict)
    ended_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime.datetime] = mapped_column(default=utcnow)
    last_used: Mapped[datetime.datetime] = mapped_column(default=utcnow)


class RunRow(Base):
    """The record of one run (its result lives in memory while the server runs)."""

    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"), index=True)
    username: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))
    statement_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    state: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    submitted_at: Mapped[datetime.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime.datetime | None] = mapped_column(nullable=True)
