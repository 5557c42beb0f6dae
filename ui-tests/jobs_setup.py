"""What the Jobs browser test (tests/jobs.spec.ts) needs, made by the test server's config before
the server starts: the Snowflake stand-in (fakesnow behind our front, which runs a task's
procedure as Snowflake would) and a smart-HTTP Git server, both on 127.0.0.1 in this process and
stopped when it exits; in the server's own store, a Snowflake fabric on the stand-in (with the
database and schema jobs are deployed into) and the owner's secret for it, and project
``default/warehouse`` on the Git server with the owner's token, holding the committed and pushed
pipeline ``orders`` of ``fixtures/orders.ipynb`` (the notebook the test opens)."""

from __future__ import annotations

import atexit
import contextlib
import json
import shutil
import tempfile
from pathlib import Path

from prophecy_jupyter.environment import local_username
from prophecy_jupyter.paths import data_dir
from prophecy_jupyter.services.runtime import build_services
from tests.servers.git_http import GitHttpServer
from tests.servers.snowflake import Accounts, snowflake_stand_in

NOTEBOOK = Path(__file__).parent / "fixtures" / "orders.ipynb"
FABRIC = "snowflake"
PROJECT = "warehouse"
SNOWFLAKE_USER, SNOWFLAKE_PASSWORD = "ana", "ana-ui-password"
GIT_TOKEN = "ghp_" + "UiJ0b" * 7


def start() -> None:
    """Start the servers and make the fabric, the project and its pipeline (once per server)."""
    stack = contextlib.ExitStack()
    atexit.register(stack.close)
    stand_in = stack.enter_context(
        snowflake_stand_in(Accounts(passwords={SNOWFLAKE_USER: SNOWFLAKE_PASSWORD}))
    )
    repositories = tempfile.mkdtemp(prefix="ui-jobs-git-")
    stack.callback(shutil.rmtree, repositories, True)
    git = GitHttpServer(Path(repositories), {GIT_TOKEN: "x-access-token"}).start()
    stack.callback(git.stop)
    _prepare_warehouse(stand_in.connect_args(user=SNOWFLAKE_USER, password=SNOWFLAKE_PASSWORD))

    owner = local_username()
    services = build_services(data_dir(), bootstrap_user=owner)
    try:
        place = {
            "account": "fakesnow",
            "user": SNOWFLAKE_USER,
            "host": "127.0.0.1",
            "port": stand_in.port,
            "protocol": "http",
            "database": "PIPE",
            "schema": "S",
        }
        fabric = services.fabrics.create(
            owner, "default", {"name": FABRIC, "kind": "snowflake", "settings": place}
        )
        services.fabrics.set_secret(owner, fabric.id, SNOWFLAKE_PASSWORD)
        url = git.create_repository(PROJECT)
        services.projects.create(owner, "default", {"name": PROJECT, "url": url, "provider": "github"})
        services.projects.set_token(owner, PROJECT, GIT_TOKEN)
        notebook = json.loads(NOTEBOOK.read_text())
        services.projects.generate(owner, PROJECT, notebook, NOTEBOOK.name, None, fabric)
        services.projects.commit(owner, PROJECT, "Add the orders pipeline")
        services.projects.push(owner, PROJECT)
    finally:
        services.close()


def _prepare_warehouse(connect: dict) -> None:
    """The database and schema the fabric's sessions (and so the jobs' tasks) use."""
    import snowflake.connector

    with contextlib.closing(snowflake.connector.connect(**connect)) as connection:
        cursor = connection.cursor()
        cursor.execute("create database if not exists PIPE")
        cursor.execute("create schema if not exists PIPE.S")
