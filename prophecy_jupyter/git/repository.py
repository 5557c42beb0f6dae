"""A project's working copy on GitPython: clone, branch, commit, push, pull with rebase, status,
diff and history, with the user's token in the environment of each git process only.

Failures become :class:`GitError` with a message that says what to do; a token never appears in
one (git's own messages are scrubbed of it too). Nothing is lost on failure: a rejected push keeps
the commit, a pull that conflicts is undone and the conflicting files are listed.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# Load without a git executable (the server extension must start anyway); using a project then
# says that git is missing.
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
import git

from prophecy_jupyter.errors import GitConflict, GitError

TIMEOUT = 120
_NOT_FAST_FORWARD = re.compile(r"non-fast-forward|\[rejected\]|fetch first|failed to push some refs")
_AUTH = re.compile(
    r"Authentication failed|HTTP 401|returned error: 401|HTTP 403|returned error: 403|could not read Username"
)


@dataclass(frozen=True)
class Author:
    name: str
    email: str


@dataclass(frozen=True)
class Change:
    path: str
    status: str  # added, modified, deleted, untracked


class Repository:
    """A working copy; ``auth`` is the environment that carries the token (see ``providers``)."""

    def __init__(self, path: Path, url: str, auth: dict[str, str], secret: str = ""):
        self.path = path
        self.url = url
        self._auth = auth
        self._secret = secret

    # -- running git ------------------------------------------------------------------------------

    def _scrub(self, text: str) -> str:
        text = text.replace(self._secret, "***") if self._secret else text
        value = self._auth.get("GIT_CONFIG_VALUE_0", "")
        return text.replace(value, "Authorization: ***") if value else text

    def _explain(self, what: str, exc: git.CommandError) -> GitError:
        if isinstance(exc, git.GitCommandNotFound):
            return GitError(f"Could not {what}: git is not installed here (on Debian: apt-get install git).")
        stderr = self._scrub(str(exc.stderr or exc)).strip()
        if _AUTH.search(stderr):
            return GitError(
                f"The Git server refused your token for {self.url} when asked to {what}. Set a valid "
                "token for the project (`jupyter prophecy project token NAME`)."
            )
        if _NOT_FAST_FORWARD.search(stderr):
            return GitError(
                f"Could not {what}: the remote branch has commits you do not have. Pull first "
                "(`%pipeline pull`); your commit is kept."
            )
        return GitError(f"git could not {what}: {stderr.splitlines()[-1] if stderr else exc}")

    @contextlib.contextmanager
    def _git(self, what: str) -> Iterator[git.Repo]:
        repo = git.Repo(self.path)
        try:
            with repo.git.custom_environment(**self._auth):
                yield repo
        except git.CommandError as exc:
            raise self._explain(what, exc) from None
        finally:
            repo.close()

    # -- operations -------------------------------------------------------------------------------

    @classmethod
    def clone(cls, path: Path, url: str, auth: dict[str, str], branch: str, secret: str = "") -> Repository:
        """Clone ``url`` into ``path`` (see :func:`_moved_in`: whole, or another clone's)."""
        repository = cls(path, url, auth, secret)
        with _moved_in(path) as scratch:
            try:
                git.Repo.clone_from(url, scratch, env=auth, branch=branch, kill_after_timeout=TIMEOUT).close()
            except git.CommandError as exc:
                raise repository._explain("clone the repository", exc) from None
        return repository

    @classmethod
    def from_bundle(
        cls, path: Path, bundle: Path, url: str, auth: dict[str, str], branch: str, secret: str = ""
    ) -> Repository:
        """A working copy restored from a bundle (offline), its remote set to ``url``."""
        with _moved_in(path) as scratch:
            repo = git.Repo.clone_from(str(bundle), scratch, branch=branch)
            with repo.config_writer() as config:
                config.set_value('remote "origin"', "url", url)
            repo.git.update_ref(f"refs/remotes/origin/{branch}", "HEAD")
            repo.close()
        return cls(path, url, auth, secret)

    def bundle(self, target: Path, branch: str) -> None:
        """Write ``branch`` with its history to a bundle file."""
        with self._git("bundle the branch") as repo:
            repo.git.bundle("create", str(target), branch)

    def branch(self) -> str:
        with self._git("read the branch") as repo:
            return repo.active_branch.name

    def head(self) -> str:
        """The id of the commit checked out."""
        with self._git("read the commit") as repo:
            return repo.head.commit.hexsha

    def remote_head(self, branch: str) -> str:
        """The commit ``branch`` is at on the remote (fetched now)."""
        with self._git(f"fetch {branch}") as repo:
            repo.git.fetch("origin", branch, kill_after_timeout=TIMEOUT)
            return repo.commit(f"origin/{branch}").hexsha

    def checkout(self, branch: str, create: bool = False) -> None:
        with self._git(f"switch to branch {branch}") as repo:
            if create:
                repo.git.checkout("-b", branch)
            else:
                repo.git.checkout(branch)

    def _inside(self, relative: str, what: str) -> Path:
        """The working copy's file at ``relative`` (GitError when it would be outside it)."""
        target = (self.path / relative).resolve()
        if self.path.resolve() not in target.parents:
            raise GitError(f"Refusing to {what} outside the working copy: {relative}")
        return target

    def read(self, prefix: str) -> dict[str, bytes]:
        """The working copy's files at ``prefix`` (a file, or a folder ending in ``/``), by path."""
        target = self._inside(prefix.rstrip("/") or ".", "read")
        files = [target] if target.is_file() else sorted(p for p in target.rglob("*") if p.is_file())
        root = self.path.resolve()
        return {
            p.relative_to(root).as_posix(): p.read_bytes()
            for p in files
            if ".git" not in p.relative_to(root).parts
        }

    def remove(self, paths: list[str]) -> list[str]:
        """Delete files from the working copy; returns those that were there."""
        removed = []
        for relative in sorted(paths):
            target = self._inside(relative, "remove")
            if target.is_file():
                target.unlink()
                removed.append(relative)
        return removed

    def write(self, files: dict[str, bytes]) -> list[str]:
        """Write files into the working copy; returns those whose content changed."""
        changed = []
        for relative, content in sorted(files.items()):
            target = self._inside(relative, "write")
            if target.is_file() and target.read_bytes() == content:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
            changed.append(relative)
        return changed

    def status(self) -> list[Change]:
        with self._git("read the status") as repo:
            lines = repo.git.status("--porcelain=v1", "--untracked-files=all").splitlines()
        codes = {"A": "added", "M": "modified", "D": "deleted", "R": "renamed", "?": "untracked"}
        changes = []
        for line in lines:
            code, path = line[:2].strip() or "M", line[3:]
            changes.append(Change(path, codes.get(code[0], "modified")))
        return changes

    def diff(self, paths: list[str] | None = None) -> str:
        """Unified diff of the working copy (untracked files included) against the last commit.

        Reading only: neither the index nor the files change."""
        with self._git("diff") as repo:
            parts = [repo.git.diff("HEAD", "--", *(paths or []))]
            untracked = repo.git.ls_files("--others", "--exclude-standard", "--", *(paths or []))
            for path in untracked.splitlines():
                # exit status 1 means "they differ": the diff is the output
                parts.append(repo.git.diff("--no-index", "--", "/dev/null", path, with_exceptions=False))
            return "\n".join(part for part in parts if part)

    def commit(self, message: str, author: Author, paths: list[str] | None = None) -> str | None:
        """Commit the changes (of ``paths``, or all); the new commit's id, or None if nothing changed."""
        if not message.strip():
            raise GitError("A commit needs a message.")
        with self._git("commit") as repo:
            repo.git.add("--all", *(["--", *paths] if paths else []))
            if not repo.index.diff("HEAD"):
                return None
            actor = git.Actor(author.name, author.email)
            commit = repo.index.commit(message, author=actor, committer=actor)
            return commit.hexsha

    def push(self, branch: str) -> None:
        with self._git(f"push {branch}") as repo:
            repo.git.push("origin", f"{branch}:{branch}", kill_after_timeout=TIMEOUT)

    def pull(self, branch: str) -> None:
        """Fetch and rebase local commits onto the remote branch; a conflict undoes the rebase."""
        with self._git(f"pull {branch}") as repo:
            repo.git.fetch("origin", kill_after_timeout=TIMEOUT)
            try:
                repo.git.rebase(f"origin/{branch}")
            except git.GitCommandError:
                files = repo.git.diff("--name-only", "--diff-filter=U").splitlines()
                with contextlib.suppress(git.GitCommandError):
                    repo.git.rebase("--abort")
                if not files:
                    raise
                raise GitConflict(
                    f"Pulling {branch} conflicts in {len(files)} file(s): {', '.join(files)}. Nothing was "
                    f"changed: your commits are as they were, the remote's are in origin/{branch}. Resolve "
                    "the files (e.g. regenerate the pipeline from the notebook) and pull again.",
                    files,
                ) from None

    def history(self, limit: int = 20) -> list[dict[str, str]]:
        with self._git("read the history") as repo:
            return [
                {
                    "id": c.hexsha,
                    "author": c.author.name,
                    "date": c.committed_datetime.isoformat(),
                    "message": c.message.strip(),
                }
                for c in repo.iter_commits(max_count=limit)
            ]

    def files_at(self, revision: str, folder: str) -> dict[str, bytes]:
        """Every file under ``folder`` at ``revision`` (without touching the working copy)."""
        with self._git("read files") as repo:
            tree = repo.commit(revision).tree
            try:
                sub = tree / folder if folder else tree
            except KeyError:
                return {}
            return {blob.path: blob.data_stream.read() for blob in sub.traverse() if blob.type == "blob"}


@contextlib.contextmanager
def _moved_in(path: Path) -> Iterator[Path]:
    """An empty folder beside ``path`` to make a working copy in, moved to ``path`` in one rename
    when done: a request that opens ``path`` meanwhile finds no working copy or a whole one, never
    a clone under way. When another request's clone got there first, that one stays and this one
    goes; a failed clone leaves nothing, and never removes what was at ``path``."""
    with tempfile.TemporaryDirectory(
        prefix=f".{path.name}.clone-", dir=path.parent, ignore_cleanup_errors=True
    ) as scratch:
        yield Path(scratch)
        try:
            os.rename(scratch, path)
        except OSError:
            if not (path / ".git").is_dir():
                raise GitError(
                    f"Could not clone into {path}: something that is not a working copy is there."
                ) from None
