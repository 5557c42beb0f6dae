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
from typing import Any, Protocol
from urllib.parse import quote

from prophecy_jupyter.errors import GitError, Invalid, NotFound
from prophecy_jupyter.git.providers import auth_environment
from prophecy_jupyter.git.repository import Author, Repository
from prophecy_jupyter.services import pipelines
from prophecy_jupyter.services.code_cache import CodeCache
from prophecy_jupyter.services.credentials import CredentialStatus
from prophecy_jupyter.services.fabrics import Fabric
from prophecy_jupyter.services.project_registry import Project


class Registry(Protocol):
    """Where projects and each user's token for them are kept: the store (``ProjectRegistry``),
    or, on a hub, the hub service."""

    def list(self, user: str) -> list[Project]: ...

    def get(self, user: str, ref: str) -> Project: ...

    def create(self, user: str, team: str, data: Any) -> Project: ...

    def delete(self, user: str, ref: str) -> Project: ...

    def set_token(self, user: str, ref: str, token: str, username: str | None = None) -> Project: ...

    def token(self, user: str, project: Project) -> dict[str, Any] | None: ...

    def token_status(self, user: str, project: Project) -> CredentialStatus: ...

    def delete_token(self, user: str, project: Project) -> None: ...


@dataclass(frozen=True)
class Published:
    """A project's branch as its remote has it."""

    url: str
    provider: str
    branch: str
    commit: str


class ProjectService:
    """Working copies, pipelines and Git for the projects of the user's teams (``registry``)."""

    def __init__(self, registry: Registry, cache: CodeCache, projects_dir: Path):
        self.registry = registry
        self.cache = cache
        self.projects_dir = projects_dir

    # -- the registry ---------------------------------------------------------------------------

    def list(self, user: str) -> list[Project]:
        """The projects of the user's teams (the user's cached code of any other goes)."""
        projects = self.registry.list(user)
        self.cache.keep_only(user, [p.id for p in projects])
        return projects

    def get(self, user: str, ref: str) -> Project:
        """A project by id, ``team/name``, or a name only one of the user's teams uses."""
        return self.registry.get(user, ref)

    def create(self, user: str, team: str, data: Any) -> Project:
        """A team's repository (team admins)."""
        return self.registry.create(user, team, data)

    def delete(self, user: str, ref: str) -> None:
        """Forget a project (admins): everyone's token for it, and the cached code here."""
        self.cache.drop_project(self.registry.delete(user, ref).id)

    def set_token(self, user: str, ref: str, token: str, username: str | None = None) -> Project:
        """The user's own token for the project's Git server."""
        return self.registry.set_token(user, ref, token, username)

    def token_status(self, user: str, project: Project) -> CredentialStatus:
        """Whether the user has set their token for the project (never the token)."""
        return self.registry.token_status(user, project)

    def delete_token(self, user: str, ref: str) -> None:
        self.registry.delete_token(user, self.get(user, ref))

    def _auth(self, user: str, project: Project) -> tuple[dict[str, str], str]:
        secret = self.registry.token(user, project)
        if secret is None:
            raise Invalid(
                f"Set your token for project '{project.ref}' first (`jupyter prophecy project token "
                f"{project.ref}`).",
                "token",
            )
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
        fabric: Fabric | None = None,
    ) -> tuple[pipelines.Pipeline, list[str]]:
        """Write the notebook's pipeline (which runs on ``fabric``, when known) into the working
        copy; returns it and the changed files."""
        project, repository, _ = self.open(user, ref)
        pipeline = pipelines.from_notebook(
            notebook,
            notebook_path,
            name,
            fabric.ref if fabric else None,
            fabric.kind if fabric else None,
            fabric.kind_of.pipeline_code if fabric else "spark",
        )
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

    # -- files of the working copy (jobs) ---------------------------------------------------------

    def working_files(self, user: str, ref: str, prefix: str) -> dict[str, bytes]:
        """The working copy's files at ``prefix`` (a file, or a folder ending in ``/``)."""
        _, repository, _ = self.open(user, ref)
        return repository.read(prefix)

    def write_files(self, user: str, ref: str, files: dict[str, bytes]) -> list[str]:
        """Write files into the working copy; the paths whose content changed."""
        _, repository, _ = self.open(user, ref)
        return repository.write(files)

    def remove_files(self, user: str, ref: str, paths: list[str]) -> list[str]:
        """Delete files from the working copy; the paths that were there."""
        _, repository, _ = self.open(user, ref)
        return repository.remove(paths)

    # -- git --------------------------------------------------------------------------------------

    def published(self, user: str, ref: str, files: dict[str, bytes]) -> Published:
        """Where the project's default branch is on its remote, once ``files`` (path → the content
        a job runs) are there as they are: Invalid naming the first that is not pushed yet."""
        project, repository, _ = self.open(user, ref)
        commit = repository.remote_head(project.default_branch)
        pushed = repository.files_at(commit, "")
        for path, content in files.items():
            if pushed.get(path) != content:
                raise Invalid(
                    f"{path} on {project.default_branch} of {project.url} is not what you committed: push "
                    "first (`jupyter prophecy project push`), so that the job runs what is in Git.",
                    "project",
                )
        return Published(project.url, project.provider, project.default_branch, commit)

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
