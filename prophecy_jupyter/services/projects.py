"""Projects: team-owned Git repositories, each user's token for them, their working copies, and
pipelines generated into them, committed and pushed.

Every user has their own working copy (``<projects dir>/<user>/<team>/<project>``). A snapshot of
the branch (a git bundle) and of its pipelines is kept in the user's own part of the encrypted code
cache after each clone, commit, pull and push, addressed by its commit, so a project opens with the
Git server unreachable and a pipeline's files are read without touching Git. Generated files are
kept as the user's encrypted drafts. Nobody reads another user's entries: what someone committed
but did not push, or generated, stays theirs; another member gets code only from Git, with their
own token.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import select

from prophecy_jupyter.git.providers import PROVIDERS, auth_environment, check_url
from prophecy_jupyter.git.repository import Author, GitError, Repository
from prophecy_jupyter.services import pipelines
from prophecy_jupyter.services.code_cache import CodeCache
from prophecy_jupyter.services.credentials import CredentialService
from prophecy_jupyter.services.errors import Conflict, Invalid, NotFound
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


class ProjectService:
    def __init__(
        self,
        db: Database,
        teams: TeamService,
        credentials: CredentialService,
        cache: CodeCache,
        projects_dir: Path,
    ):
        self.db = db
        self.teams = teams
        self.credentials = credentials
        self.cache = cache
        self.projects_dir = projects_dir

    # -- the registry ---------------------------------------------------------------------------

    def list(self, user: str) -> list[Project]:
        """The projects of the user's teams (the user's cached code of any other goes)."""
        teams = list(self.teams.roles(user))
        with self.db.transaction() as session:
            rows = session.scalars(
                select(ProjectRow).join(Team).where(Team.name.in_(teams)).order_by(Team.name, ProjectRow.name)
            )
            projects = [_view(r) for r in rows]
        self.cache.keep_only(user, [p.id for p in projects])
        return projects

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
        try:
            spec = ProjectSpec.model_validate(data)
        except ValidationError as exc:
            error = exc.errors()[0]
            field = ".".join(str(p) for p in error["loc"])
            raise Invalid(f"{field}: {error['msg'].removeprefix('Value error, ')}", field or None) from None
        with self.db.transaction() as session:
            team_row = session.scalar(select(Team).where(Team.name == team))
            if any(p.name == spec.name for p in team_row.projects):
                raise Conflict(f"Team '{team}' already has a project '{spec.name}'.")
            row = ProjectRow(team=team_row, created_by=user, **spec.model_dump())
            session.add(row)
            session.flush()
            return _view(row)

    def delete(self, user: str, ref: str) -> None:
        """Forget a project (admins); the repository itself is untouched."""
        project = self.get(user, ref)
        self.teams.require_admin(user, project.team)
        with self.db.transaction() as session:
            session.delete(session.scalar(select(ProjectRow).where(ProjectRow.uid == project.id)))
        self.credentials.delete_scope(project.scope)
        self.cache.drop_project(project.id)

    def set_token(self, user: str, ref: str, token: str, username: str | None = None) -> Project:
        """The user's own token for the project's Git server (sealed in the vault)."""
        project = self.get(user, ref)
        if not token.strip():
            raise Invalid("The token is empty.", "token")
        if PROVIDERS[project.provider].token_username is None and not username:
            raise Invalid(
                f"{PROVIDERS[project.provider].title} needs your account name with the token.", "username"
            )
        self.credentials.set(user, project, json.dumps({"token": token, "username": username}))
        return project

    def _auth(self, user: str, project: Project) -> tuple[dict[str, str], str]:
        stored = self.credentials.secret(user, project)
        if stored is None:
            raise Invalid(
                f"Set your token for project '{project.ref}' first (`jupyter prophecy project token "
                f"{project.ref}`).",
                "token",
            )
        secret = json.loads(stored)
        return auth_environment(
            project.url, project.provider, secret["token"], secret.get("username")
        ), secret["token"]

    # -- working copies ---------------------------------------------------------------------------

    def working_copy(self, user: str, project: Project) -> Path:
        """The user's own checkout (user names are quoted: one folder each, whatever they contain)."""
        folder = quote(user, safe="")
        if set(folder) <= {"."}:  # "", "." or ".." would not be a folder of its own
            folder = folder.replace(".", "%2E") or "%00"
        return self.projects_dir / folder / project.team / project.name

    def open(self, user: str, ref: str, clone: bool = True) -> tuple[Project, Repository, list[str]]:
        """The user's working copy of the project: cloned on first use, or restored from the
        cache when the Git server cannot be reached. Returns notes for the user. With ``clone``
        false a missing working copy is NotFound (for requests that only read)."""
        project = self.get(user, ref)
        auth, token = self._auth(user, project)
        path = self.working_copy(user, project)
        if (path / ".git").is_dir():
            return project, Repository(path, project.url, auth, token), []
        if not clone:
            raise NotFound(
                f"You have no working copy of project '{project.ref}' yet: pull (`%pipeline pull`, or "
                "Pull in the sidebar) or generate a pipeline to clone it."
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            repository = Repository.clone(path, project.url, auth, project.default_branch, token)
        except GitError as exc:
            bundle = self._cached(user, project, project.default_branch, "bundle")
            if bundle is None or "refused your token" in str(exc):
                raise
            repository = self._restore(path, project, bundle, auth, token)
            return (
                project,
                repository,
                [f"The Git server could not be reached ({exc}); opened from your local cache."],
            )
        self.snapshot(user, project, repository)
        return project, repository, []

    def _restore(
        self, path: Path, project: Project, bundle: bytes, auth: dict[str, str], token: str
    ) -> Repository:
        with tempfile.TemporaryDirectory(prefix="prophecy-bundle-") as scratch:
            file = Path(scratch) / "branch.bundle"
            file.write_bytes(bundle)
            return Repository.from_bundle(path, file, project.url, auth, project.default_branch, token)

    def _cached(self, user: str, project: Project, branch: str, what: str) -> bytes | None:
        """The ``bundle`` or ``pipelines`` of the user's latest snapshot of ``branch``."""
        head = self.cache.get(user, project.id, f"head:{branch}")
        return None if head is None else self.cache.get(user, project.id, f"{what}:{head.decode()}")

    def snapshot(self, user: str, project: Project, repository: Repository) -> None:
        """Keep the branch (a bundle) and its pipelines' files in the user's part of the cache,
        under the commit they come from."""
        branch, commit = repository.branch(), repository.head()
        with tempfile.TemporaryDirectory(prefix="prophecy-bundle-") as scratch:
            file = Path(scratch) / "branch.bundle"
            repository.bundle(file, branch)
            self.cache.put(user, project.id, f"bundle:{commit}", file.read_bytes())
        files = repository.files_at("HEAD", "pipelines")
        encoded = {path: content.decode("utf-8", errors="surrogateescape") for path, content in files.items()}
        self.cache.put(user, project.id, f"pipelines:{commit}", json.dumps(encoded, sort_keys=True).encode())
        self.cache.put(user, project.id, f"head:{branch}", commit.encode())

    # -- pipelines --------------------------------------------------------------------------------

    def generate(
        self,
        user: str,
        ref: str,
        notebook: dict[str, Any],
        notebook_path: str,
        name: str | None = None,
        fabric_kind: str | None = None,
    ) -> tuple[pipelines.Pipeline, list[str]]:
        """Write the notebook's pipeline into the working copy; returns it and the changed files."""
        project, repository, _ = self.open(user, ref)
        pipeline = pipelines.from_notebook(notebook, notebook_path, name, fabric_kind)
        files = pipeline.files()
        self.cache.put(
            user,
            project.id,
            f"draft:{pipeline.name}",
            json.dumps({path: content.decode() for path, content in files.items()}, sort_keys=True).encode(),
        )
        return pipeline, repository.write(files)

    def pipeline_files(self, user: str, ref: str, name: str, clone: bool = True) -> dict[str, bytes]:
        """A committed pipeline's files from the cache (no Git), or from the working copy's HEAD."""
        pipelines.check_name(name)
        project = self.get(user, ref)
        cached = self._cached(user, project, project.default_branch, "pipelines")
        if cached is None:
            _, repository, _ = self.open(user, ref, clone)
            self.snapshot(user, project, repository)
            cached = self._cached(user, project, project.default_branch, "pipelines") or b"{}"
        prefix = f"pipelines/{name}/"
        files = {
            path: content.encode("utf-8", errors="surrogateescape")
            for path, content in json.loads(cached).items()
            if path.startswith(prefix)
        }
        if not files:
            raise NotFound(f"Project '{project.ref}' has no pipeline '{name}' on {project.default_branch}.")
        return files

    def draft(self, user: str, ref: str, name: str) -> dict[str, bytes] | None:
        project = self.get(user, ref)
        cached = self.cache.get(user, project.id, f"draft:{pipelines.check_name(name)}")
        return None if cached is None else {p: c.encode() for p, c in json.loads(cached).items()}

    # -- git --------------------------------------------------------------------------------------

    def status(self, user: str, ref: str, clone: bool = True) -> dict[str, Any]:
        """Branch and changed files of the user's working copy (``cloned`` false when there is
        none yet and ``clone`` is false)."""
        try:
            project, repository, notes = self.open(user, ref, clone)
        except NotFound:
            if clone:
                raise
            project = self.get(user, ref)
            note = "No working copy yet: pull or generate a pipeline to clone it."
            return {"project": project.ref, "branch": None, "changes": [], "notes": [note], "cloned": False}
        changes = [{"path": c.path, "status": c.status} for c in repository.status()]
        branch = repository.branch()
        return {"project": project.ref, "branch": branch, "changes": changes, "notes": notes, "cloned": True}

    def diff(self, user: str, ref: str, paths: list[str] | None = None, clone: bool = True) -> str:
        _, repository, _ = self.open(user, ref, clone)
        return repository.diff(paths)

    def commit(self, user: str, ref: str, message: str) -> str | None:
        """Commit every change of the working copy as the user; the commit id, None if nothing changed."""
        project, repository, _ = self.open(user, ref)
        commit = repository.commit(message, Author(user, f"{user}@users.prophecy-jupyter.local"))
        if commit:
            self.snapshot(user, project, repository)
        return commit

    def push(self, user: str, ref: str) -> str:
        """Push the working copy's branch; returns its name."""
        return self._sync(user, ref, Repository.push)

    def pull(self, user: str, ref: str) -> str:
        """Rebase the working copy's branch onto the remote's; returns its name."""
        return self._sync(user, ref, Repository.pull)

    def _sync(self, user: str, ref: str, operation: Callable[[Repository, str], None]) -> str:
        project, repository, _ = self.open(user, ref)
        branch = repository.branch()
        operation(repository, branch)
        self.snapshot(user, project, repository)
        return branch

    def branch(self, user: str, ref: str, name: str, create: bool = False) -> str:
        _, repository, _ = self.open(user, ref)
        repository.checkout(name, create)
        return name

    def history(self, user: str, ref: str, limit: int = 20, clone: bool = True) -> list[dict[str, str]]:
        _, repository, _ = self.open(user, ref, clone)
        return repository.history(limit)
