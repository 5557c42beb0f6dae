"""The code cache belongs to the user who wrote it: another member of the team (with or without a
Git token) never reads, nor runs, someone's unpushed commit or draft from it, and a deleted project's
entries go with it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prophecy_jupyter.errors import Invalid, NotFound
from prophecy_jupyter.services.runtime import build_services
from tests.servers.git_http import GitHttpServer

ALICE, BOB = "alice", "bob"
TOKENS = {"ghp_alice_" + "a" * 16: "x-access-token", "ghp_bob_" + "b" * 18: "x-access-token"}
ALICE_TOKEN, BOB_TOKEN = list(TOKENS)
SECRET_LOGIC = "discount = 0.42  # alice's unpushed pricing rule"


def notebook() -> dict:
    cells = [
        {"cell_type": "code", "metadata": {}, "source": f"%%spark\n{SECRET_LOGIC}\nprint(discount)"},
    ]
    return {"cells": cells, "metadata": {"prophecy": {"fabric": "local"}}, "nbformat": 4, "nbformat_minor": 5}


@pytest.fixture
def git_server(tmp_path):
    served = GitHttpServer(tmp_path / "served", TOKENS).start()
    yield served
    served.stop()


@pytest.fixture
def services(data_dir):
    built = build_services(data_dir, bootstrap_user=ALICE)
    built.teams.set_member(ALICE, "default", BOB, "member")
    yield built
    built.close()


def test_another_member_never_gets_code_someone_did_not_push(services, git_server, data_dir):
    spec = {"name": "pricing", "url": git_server.create_repository("pricing"), "provider": "github"}
    project = services.projects.create(ALICE, "default", spec)
    services.projects.set_token(ALICE, "pricing", ALICE_TOKEN)
    services.projects.generate(ALICE, "pricing", notebook(), "notebooks/pricing.ipynb")
    assert services.projects.commit(ALICE, "pricing", "Pricing rule (not pushed yet)")
    assert SECRET_LOGIC.encode() in b"".join(
        services.projects.pipeline_files(ALICE, "pricing", "pricing").values()
    )

    # bob, without a Git token: nothing from the cache, and nothing to run
    with pytest.raises(Invalid, match="token"):
        services.projects.pipeline_files(BOB, "pricing", "pricing")
    with pytest.raises(Invalid, match="token"):
        services.pipeline_runs.run(BOB, "pricing", "pricing", "local", {})
    # bob, with his own token: what the Git server has, which is not alice's unpushed commit
    services.projects.set_token(BOB, "pricing", BOB_TOKEN)
    with pytest.raises(NotFound):
        services.projects.pipeline_files(BOB, "pricing", "pricing")
    assert services.projects.draft(BOB, "pricing", "pricing") is None
    assert json.loads(json.dumps(services.projects.status(BOB, "pricing")))["changes"] == []
    for path in Path(data_dir, "cache").rglob("*"):
        if path.is_file():
            assert SECRET_LOGIC.encode() not in path.read_bytes(), "the cache is sealed"

    # once alice pushes, bob gets it from Git with his own token
    services.projects.push(ALICE, "pricing")
    services.projects.pull(BOB, "pricing")
    assert SECRET_LOGIC.encode() in b"".join(
        services.projects.pipeline_files(BOB, "pricing", "pricing").values()
    )

    # a deleted project's entries go with it; a new one of the same name starts empty
    services.projects.delete(ALICE, "pricing")
    assert not any(Path(data_dir, "cache").rglob("*.sealed"))
    again = services.projects.create(ALICE, "default", spec)
    assert again.id != project.id
    assert services.projects.draft(ALICE, "pricing", "pricing") is None
