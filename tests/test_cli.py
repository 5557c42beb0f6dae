"""``jupyter prophecy``: help everywhere, teams, fabrics, credentials, the vault, sparkmagic import, exec."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

JUPYTER = str(Path(sys.executable).with_name("jupyter"))
COMMANDS = [
    [],
    ["gateway"],
    ["team"],
    ["team", "list"],
    ["team", "create"],
    ["team", "members"],
    ["team", "add-member"],
    ["team", "remove-member"],
    ["fabric"],
    ["fabric", "add"],
    ["fabric", "edit"],
    ["fabric", "list"],
    ["fabric", "test"],
    ["fabric", "start"],
    ["fabric", "clusters"],
    ["fabric", "remove"],
    ["credentials"],
    ["credentials", "set"],
    ["credentials", "status"],
    ["credentials", "delete"],
    ["vault"],
    ["vault", "rotate"],
    ["import-sparkmagic"],
    ["import-snowflake"],
    ["exec"],
    ["run"],
    ["project"],
    ["project", "add"],
    ["project", "list"],
    ["project", "remove"],
    ["project", "token"],
    ["project", "status"],
    ["project", "diff"],
    ["project", "commit"],
    ["project", "push"],
    ["project", "pull"],
    ["project", "branch"],
    ["project", "log"],
    ["pipeline"],
    ["pipeline", "generate"],
    ["pipeline", "show"],
    ["pipeline", "run"],
    ["job"],
    ["job", "create"],
    ["job", "list"],
    ["job", "show"],
    ["job", "delete"],
    ["job", "export"],
    ["job", "deploy"],
    ["job", "run"],
    ["job", "runs"],
    ["job", "cancel"],
    ["job", "pause"],
    ["job", "resume"],
    ["cache"],
    ["cache", "clear"],
]


def cli(*args: str, stdin: str | None = None, timeout: float = 180, user: str | None = None):
    env = dict(os.environ, **({"JUPYTERHUB_USER": user} if user else {}))
    return subprocess.run(
        [JUPYTER, "prophecy", *args], input=stdin, capture_output=True, text=True, timeout=timeout, env=env
    )


def add_bearer_fabric(name: str, token: str) -> None:
    """A livy fabric with bearer auth in team default; ``token`` is the adding user's secret."""
    added = cli("fabric", "add", name, "--url", "https://livy.example.com", "--auth", "bearer", stdin=token)
    assert added.returncode == 0, added.stderr


def scan(directory: Path, secret: str) -> None:
    for path in directory.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), f"a secret in clear in {path}"


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "prophecy")
def test_every_command_has_help(command):
    result = cli(*command, "--help")
    assert result.returncode == 0 and "usage: jupyter prophecy" in result.stdout


def test_fabrics_are_added_edited_listed_and_removed_with_secrets_only_in_the_vault(data_dir):
    added = cli(
        "fabric",
        "add",
        "prod",
        "--url",
        "https://livy.example.com:8998",
        "--auth",
        "basic",
        "--username",
        "ana",
        "--header",
        "X-Team=data",
        "--environment",
        "prod",
        "--job-size",
        'M={"driverMemory": "4g"}',
        stdin="pa55-word-xyz\n",
    )
    assert added.returncode == 0, added.stderr
    assert "Added fabric 'default/prod'" in added.stdout and "stored encrypted" in added.stdout
    listing = json.loads(cli("fabric", "list", "--json").stdout)
    assert [f["ref"] for f in listing] == ["local", "default/prod"]
    prod = listing[1]
    assert prod["credential_set"] is True and prod["settings"]["headers"] == {"X-Team": "data"}
    assert prod["job_sizes"] == {"M": {"driverMemory": "4g"}} and "pa55" not in json.dumps(prod)
    scan(data_dir, "pa55-word-xyz")
    edited = cli("fabric", "edit", "prod", "--url", "https://livy2.example.com", "--environment", "staging")
    assert edited.returncode == 0, edited.stderr
    again = json.loads(cli("fabric", "list", "--json").stdout)[1]
    assert again["settings"]["url"] == "https://livy2.example.com" and again["settings"]["username"] == "ana"
    assert again["credential_set"] is True, "editing settings keeps the users' credentials"
    table = cli("fabric", "list").stdout
    assert "default/prod" in table and "set" in table and "pa55" not in table
    duplicate = cli("fabric", "add", "prod", "--url", "https://other", "--no-secret")
    assert duplicate.returncode == 1 and "already has a fabric 'prod'" in duplicate.stderr
    assert cli("fabric", "remove", "prod").returncode == 0
    assert [f["ref"] for f in json.loads(cli("fabric", "list", "--json").stdout)] == ["local"]


@pytest.mark.parametrize(
    "args,message",
    [
        (["fabric", "add", "bad name", "--url", "http://x"], "name: use 1-64"),
        (["fabric", "add", "x", "--url", "ftp://x"], "settings.url: must be an http"),
        (["fabric", "add", "x", "--url", "http://x", "--header", "novalue"], "--header takes KEY=VALUE"),
        (["fabric", "add", "x", "--url", "http://x", "--job-size", "M={bad"], "--job-size M: not JSON"),
        (["fabric", "add", "x", "--url", "http://x", "--auth", "basic"], "basic auth needs a username"),
        (
            ["fabric", "add", "x", "--kind", "databricks", "--host", "https://h", "--url", "http://x"],
            "settings.cluster_id: Field required; settings.url: Extra inputs are not permitted",
        ),
        (["fabric", "add", "local", "--url", "http://x"], "'local' is the built-in fabric"),
        (["fabric", "remove", "local"], "built in"),
        (["fabric", "edit", "nope", "--url", "http://x"], "No fabric 'nope'"),
        (["credentials", "set", "local"], "takes no secret"),
        (["team", "create", "a/b"], "name: use 1-64"),
        (["team", "members", "elsewhere"], "No team 'elsewhere'"),
        (["exec", "--fabric", "nope", "1"], "No fabric 'nope'"),
        (["import-sparkmagic", "/no/such/config.json"], "No such file"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(data_dir, args, message):
    result = cli(*args, stdin="secret")
    assert result.returncode == 1, result.stdout
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_secrets_are_never_taken_from_the_command_line(data_dir):
    result = cli("fabric", "add", "x", "--url", "https://x", "--auth", "bearer", "--token", "abc")
    assert result.returncode == 2 and "unrecognized arguments: --token" in result.stderr
    empty = cli("fabric", "add", "x", "--url", "https://x", "--auth", "bearer", stdin="")
    assert empty.returncode == 1 and "secret is empty" in empty.stderr


def test_teams_members_and_admin_rights(data_dir):
    assert cli("team", "create", "analytics").returncode == 0
    teams = json.loads(cli("team", "list", "--json").stdout)
    assert {"name": "analytics", "role": "admin"} in teams and {"name": "default", "role": "admin"} in teams
    assert cli("team", "add-member", "analytics", "bea").returncode == 0
    plain = cli("fabric", "add", "shared", "--team", "analytics", "--url", "http://livy:8998")
    assert plain.returncode == 1 and "plain http" in plain.stderr
    added = cli("fabric", "add", "shared", "--team", "analytics", "--url", "http://livy:8998", "--allow-http")
    assert added.returncode == 0, added.stderr
    members = json.loads(cli("team", "members", "analytics", "--json").stdout)
    assert {"username": "bea", "role": "member"} in members
    # bea sees the team's fabric but may not change it; a stranger sees neither
    assert "analytics/shared" in cli("fabric", "list", user="bea").stdout
    denied = cli("fabric", "edit", "analytics/shared", "--url", "http://other", user="bea")
    assert denied.returncode == 1 and "Only admins of team 'analytics'" in denied.stderr
    stranger = cli("fabric", "list", user="carl").stdout
    assert "analytics/shared" not in stranger
    assert "No fabric 'analytics/shared'" in cli("fabric", "test", "analytics/shared", user="carl").stderr
    demoted = cli("team", "add-member", "analytics", _me())
    assert demoted.returncode == 1 and "needs at least one admin" in demoted.stderr
    assert cli("team", "remove-member", "analytics", "bea").returncode == 0


def _me() -> str:
    import getpass

    return getpass.getuser()


def test_each_user_sets_their_own_credential(data_dir):
    add_bearer_fabric("prod", "owner-token-123")
    assert cli("team", "add-member", "default", "bea").returncode == 0
    status = cli("credentials", "status", user="bea").stdout
    assert "default/prod" in status and "missing" in status
    assert cli("credentials", "set", "prod", stdin="bea-token-456\n", user="bea").returncode == 0
    assert "set (set" in cli("credentials", "status", user="bea").stdout
    scan(data_dir, "bea-token-456")
    scan(data_dir, "owner-token-123")
    assert "Deleted your secret" in cli("credentials", "delete", "prod", user="bea").stdout


def test_vault_rotation_keeps_every_credential(data_dir, monkeypatch):
    monkeypatch.delenv("PROPHECY_JUPYTER_KEY")
    add_bearer_fabric("prod", "rotating-token")
    key_before = (data_dir / "vault.key").read_text()
    rotated = cli("vault", "rotate")
    assert rotated.returncode == 0 and "Re-encrypted 1 credential(s)" in rotated.stdout
    assert (data_dir / "vault.key").read_text() != key_before
    assert "set" in cli("credentials", "status").stdout
    from prophecy_jupyter.services.runtime import build_services

    built = build_services(data_dir)
    try:
        fabric = built.fabrics.get(_me(), "prod")
        assert built.credentials.secret(_me(), fabric) == "rotating-token"
    finally:
        built.close()


def test_vault_rotation_with_an_environment_key_needs_the_new_key(data_dir):
    refused = cli("vault", "rotate")
    assert refused.returncode == 1 and "--new-key-stdin" in refused.stderr
    from prophecy_jupyter.vault.keys import new_key

    accepted = cli("vault", "rotate", "--new-key-stdin", stdin=new_key())
    assert accepted.returncode == 0 and "now set $PROPHECY_JUPYTER_KEY" in accepted.stdout


def test_import_sparkmagic_creates_fabrics_and_credentials(data_dir, tmp_path):
    config = {
        "kernel_python_credentials": {
            "username": "ana",
            "password": "sm-pass-789",
            "url": "https://livy.corp:8998",
            "auth": "Basic_Access",
        },
        "kernel_scala_credentials": {
            "username": "ana",
            "password": "sm-pass-789",
            "url": "https://livy.corp:8998",
            "auth": "Basic_Access",
        },
        "kernel_r_credentials": {
            "username": "",
            "password": "",
            "url": "http://krb-livy:8998",
            "auth": "Kerberos",
        },
        "session_configs": {
            "driverMemory": "2g",
            "executorCores": 2,
            "conf": {"spark.sql.shuffle.partitions": 8},
        },
        "custom_headers": {"X-Requested-By": "sparkmagic"},
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    result = cli("import-sparkmagic", str(path))
    assert result.returncode == 0, result.stderr
    assert "created fabric default/livy-livy.corp-8998 with your password stored encrypted" in result.stdout
    assert "created fabric default/livy-krb-livy-8998" in result.stdout
    fabrics = {f["ref"]: f for f in json.loads(cli("fabric", "list", "--json").stdout)}
    basic = fabrics["default/livy-livy.corp-8998"]
    assert basic["settings"]["auth"] == "basic" and basic["settings"]["username"] == "ana"
    assert basic["conf"] == {"spark.sql.shuffle.partitions": "8"} and basic["credential_set"] is True
    assert basic["job_sizes"] == {"sparkmagic": {"driverMemory": "2g", "executorCores": 2}}
    assert fabrics["default/livy-krb-livy-8998"]["settings"]["auth"] == "kerberos"
    scan(data_dir, "sm-pass-789")
    again = cli("import-sparkmagic", str(path))
    assert "skipped default/livy-livy.corp-8998 (exists)" in again.stdout


@pytest.mark.spark
def test_exec_runs_python_and_sql_and_fails_with_the_remote_error(data_dir, gateway):
    added = cli("fabric", "add", "gw", "--url", gateway.url, "--auth", "bearer", stdin=gateway.token)
    assert added.returncode == 0, added.stderr
    tested = cli("fabric", "test", "gw")
    assert tested.returncode == 0 and "connected: Connected to Livy 0.9.0" in tested.stdout
    python = cli("exec", "--fabric", "gw", "print('hi')\nspark.range(4).count()")
    assert python.returncode == 0 and python.stdout.splitlines() == ["hi", "4"]
    sql = cli(
        "exec",
        "--fabric",
        "gw",
        "--language",
        "sql",
        "--json",
        "select cast(1 as int) as n, 'a' as s, date'2024-02-03' as d",
    )
    body = json.loads(sql.stdout)
    assert body["columns"] == [
        {"name": "n", "dtype": "int32"},
        {"name": "s", "dtype": "string"},
        {"name": "d", "dtype": "date32[day][pyarrow]"},
    ]
    assert body["data"] == [[1, "a", "2024-02-03"]]
    piped = cli("exec", "--fabric", "gw", "-", stdin="6 * 7")
    assert piped.stdout.strip() == "42"
    failed = cli("exec", "--fabric", "gw", "undefined_name")
    assert failed.returncode == 1 and "NameError: name 'undefined_name' is not defined" in failed.stderr
    assert cli("credentials", "delete", "gw").returncode == 0
    missing = cli("exec", "--fabric", "gw", "1")
    assert missing.returncode == 1 and "needs your token" in missing.stderr


@pytest.mark.spark
def test_databricks_fabrics_from_the_command_line(data_dir, databricks_workspace):
    ws = databricks_workspace
    ws.start_delay = 2.0
    cluster = ws.add_cluster("nightly", state="TERMINATED")
    added = cli(
        "fabric",
        "add",
        "dbx",
        "--kind",
        "databricks",
        "--host",
        ws.url,
        "--cluster-id",
        cluster,
        stdin=ws.pat,
    )
    assert added.returncode == 0, added.stderr
    stopped = cli("exec", "--fabric", "dbx", "1 + 1")
    assert "Traceback" not in stopped.stderr, stopped.stderr
    assert (
        stopped.returncode == 1
        and "start it with `%fabric start` (or `jupyter prophecy fabric start default/dbx`)"
        in (stopped.stderr)
    )
    listed = cli("fabric", "clusters", "dbx")
    assert listed.returncode == 0 and f"{cluster}" in listed.stdout and "TERMINATED" in listed.stdout
    started = cli("fabric", "start", "dbx")
    assert started.returncode == 0, started.stderr
    assert "PENDING (Starting Spark)" in started.stdout and started.stdout.strip().endswith(
        "cluster nightly: RUNNING"
    )
    python = cli("exec", "--fabric", "dbx", "print('hi')\n6 * 7")
    assert python.returncode == 0 and python.stdout.splitlines() == ["hi", "42"], python.stderr
    sql = cli(
        "exec",
        "--fabric",
        "dbx",
        "--language",
        "sql",
        "--json",
        "-p",
        "n:INT=3",
        "SELECT id FROM range(:n)",
    )
    assert json.loads(sql.stdout)["data"] == [[0], [1], [2]], sql.stderr

    warehouse = ws.add_warehouse()
    added = cli(
        "fabric",
        "add",
        "bi",
        "--kind",
        "databricks-sql",
        "--host",
        ws.url,
        "--warehouse-id",
        warehouse,
        stdin=ws.pat,
    )
    assert added.returncode == 0, added.stderr
    tested = cli("fabric", "test", "bi")
    assert tested.returncode == 0 and f"warehouse {warehouse} is RUNNING" in tested.stdout
    rows = cli("exec", "--fabric", "bi", "--language", "sql", "--json", "-p", "who=ana", "SELECT :who AS who")
    body = json.loads(rows.stdout)
    assert body["columns"] == [{"name": "who", "dtype": "string"}] and body["data"] == [["ana"]]
    python = cli("exec", "--fabric", "bi", "1 + 1")
    assert python.returncode == 1 and "runs SQL only" in python.stderr
    bad = cli("exec", "--fabric", "bi", "--language", "sql", "-p", "oops", "SELECT 1")
    assert bad.returncode != 0 and "NAME=VALUE" in bad.stderr
    scan(data_dir, ws.pat)


@pytest.mark.spark
def test_projects_and_pipelines_from_the_command_line(data_dir, tmp_path, monkeypatch):
    from tests.servers.git_http import GitHttpServer

    token = "glpat-" + "Qw3r" * 5
    monkeypatch.setenv("PROPHECY_JUPYTER_PROJECTS_DIR", str(tmp_path / "work"))
    server = GitHttpServer(tmp_path / "served", {token: "oauth2"}).start()
    try:
        url = server.create_repository("etl")
        added = cli("project", "add", "etl", "--url", url, "--provider", "gitlab")
        assert added.returncode == 0, added.stderr
        missing = cli("project", "status", "etl")
        assert missing.returncode == 1 and "Set your token for project 'default/etl' first" in missing.stderr
        assert cli("project", "token", "etl", stdin="wrong").returncode == 0
        refused = cli("project", "status", "etl")
        assert (
            refused.returncode == 1
            and "refused your token" in refused.stderr
            and "wrong" not in refused.stderr
        )
        assert cli("project", "token", "etl", stdin=token).returncode == 0
        listed = cli("project", "list")
        assert "default/etl" in listed.stdout and " set " in listed.stdout
        notebook = Path(__file__).parents[1] / "notebooks" / "quickstart.ipynb"
        generated = cli("pipeline", "generate", str(notebook), "--project", "etl")
        assert generated.returncode == 0 and "Pipeline 'quickstart': 2 step(s)" in generated.stdout, (
            generated.stderr
        )
        draft = cli("pipeline", "show", "quickstart", "--project", "etl", "--draft")
        assert draft.returncode == 0 and "def step_1():" in draft.stdout
        status = cli("project", "status", "etl")
        assert "untracked  pipelines/quickstart/pipeline.py" in status.stdout, status.stdout
        assert "+def main(argv=None):" in cli("project", "diff", "etl").stdout
        assert cli("project", "commit", "etl", "-m", "Add quickstart").stdout.startswith("Committed ")
        assert cli("project", "push", "etl").stdout.strip() == "Pushed main."
        assert "Add quickstart" in cli("project", "log", "etl").stdout
        assert (
            cli("project", "branch", "etl", "feature/x", "--create").stdout.strip() == "On branch feature/x."
        )
        assert "default/etl on feature/x: nothing to commit" in cli("project", "status", "etl").stdout
        assert cli("project", "push", "etl").stdout.strip() == "Pushed feature/x."
        assert cli("project", "branch", "etl", "main").returncode == 0
        shown = cli("pipeline", "show", "quickstart", "--project", "etl", "--file", "pipeline.yaml")
        assert "fabric_kind: local" in shown.stdout
        ran = cli("pipeline", "run", "quickstart", "--project", "etl", "--fabric", "local", timeout=300)
        assert ran.returncode == 0 and ran.stdout.strip() == "20,000 orders", ran.stderr
        job = [
            "--project",
            "etl",
            "--pipeline",
            "quickstart",
            "--fabric",
            "local",
            "--timezone",
            "Asia/Tokyo",
        ]
        bad = cli("job", "create", "nightly", *job, "--schedule", "0 2 * *")
        assert bad.returncode == 1 and "Job field schedule.cron: must be 5 fields" in bad.stderr, bad.stderr
        created = cli(
            "job", "create", "nightly", *job, "--schedule", "0 2 * * *", "--email", "me@example.com"
        )
        assert created.stdout.strip() == (
            "Job 'nightly': quickstart on local, 0 2 * * * (Asia/Tokyo); changed jobs/nightly.yaml."
        ), created.stderr
        assert cli("job", "list", "--project", "etl").stdout.strip() == (
            "nightly: quickstart on local, 0 2 * * * (Asia/Tokyo)"
        )
        shown = json.loads(cli("job", "show", "nightly", "--project", "etl", "--json").stdout)
        assert shown["emails"] == ["me@example.com"] and len(shown["next_runs"]) == 3
        assert all(run.endswith("T02:00:00+09:00") for run in shown["next_runs"]), shown["next_runs"]
        assert cli("project", "commit", "etl", "-m", "Schedule quickstart").returncode == 0
        assert "jobs/nightly.yaml" not in cli("project", "status", "etl").stdout
        assert cli("cache", "clear").stdout.startswith("Removed ")
    finally:
        server.stop()
    scan(data_dir, token)
    scan(tmp_path / "work", token)
