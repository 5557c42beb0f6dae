"""The store on a shared PostgreSQL, as several Jupyter servers (JupyterHub) use it: migrated on
open, teams, fabrics and sealed credentials written by one server and read by another."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, text

from prophecy_jupyter.services.runtime import build_services
from prophecy_jupyter.store.database import Database
from tests.servers.postgres import running_postgres


@pytest.fixture(scope="module")
def postgres_url():
    with running_postgres() as url:
        yield url


def test_two_servers_share_teams_fabrics_and_credentials(postgres_url, tmp_path, data_dir):
    first = build_services(tmp_path / "server-a", database_url=postgres_url, bootstrap_user="ana")
    second = build_services(tmp_path / "server-b", database_url=postgres_url, bootstrap_user="ben")
    try:
        first.teams.create("ana", "etl")
        first.teams.set_member("ana", "etl", "ben", "member")
        spec = {
            "name": "prod",
            "kind": "livy",
            "settings": {"url": "https://livy.example.com", "auth": "bearer"},
        }
        fabric = first.fabrics.create("ana", "etl", spec)
        second.credentials.set("ben", fabric, "ben-token-63f1")
        assert [t.name for t in second.teams.teams_of("ben")] == ["etl"], "ben was not made admin of default"
        assert second.fabrics.get("ben", "etl/prod").settings["url"] == "https://livy.example.com"
        assert first.fabrics.secret("ben", first.fabrics.get("ana", "etl/prod")) == "ben-token-63f1"
        assert first.credentials.status("ana", fabric).set is False
    finally:
        first.close()
        second.close()


def test_the_schema_is_migrated_once_and_kept(postgres_url):
    database = Database.open(postgres_url)
    try:
        with database.engine.connect() as connection:
            head = connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
            tables = set(inspect(connection).get_table_names())
        assert {
            "teams",
            "memberships",
            "fabrics",
            "job_sizes",
            "credentials",
            "attachments",
            "sessions",
            "runs",
        } <= tables
        database.migrate()
        with database.engine.connect() as connection:
            assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == head
    finally:
        database.close()
