"""Repository operations against a real smart-HTTP Git server (``git http-backend`` with Basic
auth): clone, commit, push, pull with rebase; clear errors for a wrong token, a rejected push and
a conflicting pull, with nothing lost; the token never written anywhere git keeps things."""

from __future__ import annotations

import os
import subprocess

import pytest

from prophecy_jupyter.errors import GitConflict, GitError
from prophecy_jupyter.git.providers import auth_environment
from prophecy_jupyter.git.repository import Author, Repository
from tests.servers.git_http import GitHttpServer

TOKEN = "glpat-" + "7Qk2" * 5
ANA = Author("Ana Lima", "ana@example.com")


@pytest.fixture
def server(tmp_path):
    served = GitHttpServer(tmp_path / "served", {TOKEN: "oauth2"}).start()
    yield served
    served.stop()


@pytest.fixture
def trace(tmp_path, monkeypatch):
    """Every git command line (and its children's) goes to a trace file."""
    path = tmp_path / "git-trace.log"
    monkeypatch.setenv("GIT_TRACE", str(path))
    return path


def clone(server, url, path, token=TOKEN):
    return Repository.clone(path, url, auth_environment(url, "gitlab", token, None), "main", token)


def test_clone_commit_push_pull_and_no_token_on_disk(server, tmp_path, trace):
    url = server.create_repository("orders")
    ana = clone(server, url, tmp_path / "ana")
    assert ana.write({"pipelines/x/pipeline.py": b"print(1)\n"}) == ["pipelines/x/pipeline.py"]
    assert [c.path for c in ana.status()] == ["pipelines/x/pipeline.py"]
    assert "+print(1)" in ana.diff()
    first = ana.commit("Add x", ANA)
    assert first and ana.commit("Nothing", ANA) is None
    ana.push("main")
    assert ana.history()[0]["author"] == "Ana Lima"

    bob = clone(server, url, tmp_path / "bob")
    assert (tmp_path / "bob/pipelines/x/pipeline.py").read_bytes() == b"print(1)\n"
    bob.write({"pipelines/y/pipeline.py": b"print(2)\n"})
    bob.commit("Add y", Author("Bob", "bob@example.com"))
    bob.push("main")
    ana.write({"pipelines/x/README.md": b"x\n"})
    ana.commit("Describe x", ANA)
    with pytest.raises(GitError, match=r"remote branch has commits you do not have\. Pull first"):
        ana.push("main")
    ana.pull("main")  # rebases the local commit onto bob's
    ana.push("main")
    assert [h["message"] for h in ana.history(3)] == ["Describe x", "Add y", "Add x"]
    assert {r["user"] for r in server.requests} == {"oauth2"}

    for folder in (tmp_path / "ana", tmp_path / "bob"):
        for path in folder.rglob("*"):
            assert not path.is_file() or TOKEN.encode() not in path.read_bytes(), path
        assert "oauth2" not in (folder / ".git/config").read_text()
    assert trace.read_text().count("git") > 5 and TOKEN not in trace.read_text()
    remote = subprocess.run(
        ["git", "-C", str(tmp_path / "ana"), "remote", "-v"], capture_output=True, text=True
    )
    assert TOKEN not in remote.stdout and "@" not in remote.stdout


def test_a_wrong_token_and_a_conflict_are_clear_and_lose_nothing(server, tmp_path):
    url = server.create_repository("sales")
    with pytest.raises(GitError, match="refused your token") as refused:
        clone(server, url, tmp_path / "nope", token="wrong-token")
    assert "wrong-token" not in str(refused.value) and not (tmp_path / "nope").exists()

    ana, bob = clone(server, url, tmp_path / "ana"), clone(server, url, tmp_path / "bob")
    bob.write({"README.md": b"# sales by bob\n"})
    bob.commit("Bob's title", Author("Bob", "bob@example.com"))
    bob.push("main")
    ana.write({"README.md": b"# sales by ana\n"})
    mine = ana.commit("Ana's title", ANA)
    with pytest.raises(GitConflict) as conflict:
        ana.pull("main")
    assert conflict.value.files == ["README.md"] and "Nothing was changed" in str(conflict.value)
    assert ana.history(1)[0]["id"] == mine, "the local commit is kept"
    assert (tmp_path / "ana/README.md").read_bytes() == b"# sales by ana\n"
    theirs = subprocess.run(
        ["git", "-C", str(tmp_path / "ana"), "show", "origin/main:README.md"], capture_output=True, text=True
    )
    assert theirs.stdout == "# sales by bob\n", "the remote side is there too"
    assert os.path.isdir(tmp_path / "ana/.git") and not (tmp_path / "ana/.git/rebase-merge").exists()


def test_a_missing_git_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no git on it
    with pytest.raises(GitError, match=r"git is not installed here \(on Debian: apt-get install git\)"):
        Repository.clone(tmp_path / "copy", "https://git.example.com/r.git", {}, "main")
    assert not (tmp_path / "copy").exists()
