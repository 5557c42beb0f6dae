"""``jupyter prophecy``: help everywhere, fabrics, exec on a real gateway, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

JUPYTER = str(Path(sys.executable).with_name("jupyter"))


def cli(*args: str, stdin: str | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [JUPYTER, "prophecy", *args], input=stdin, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["gateway"],
        ["fabric"],
        ["fabric", "add"],
        ["fabric", "list"],
        ["fabric", "remove"],
        ["exec"],
        ["run"],
    ],
)
def test_every_command_has_help(command):
    result = cli(*command, "--help")
    assert result.returncode == 0 and "usage: jupyter prophecy" in result.stdout


def test_fabrics_are_added_listed_and_removed_with_secrets_only_in_the_vault(data_dir):
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
    assert "stored encrypted" in added.stdout
    listing = json.loads(cli("fabric", "list", "--json").stdout)
    assert [f["name"] for f in listing] == ["local", "prod"]
    prod = listing[1]
    assert prod["secret_set"] is True and prod["headers"] == {"X-Team": "data"}
    assert prod["job_sizes"] == {"M": {"driverMemory": "4g"}}
    for path in data_dir.rglob("*"):
        if path.is_file():
            assert b"pa55-word-xyz" not in path.read_bytes(), f"secret in clear in {path}"
    table = cli("fabric", "list").stdout
    assert "prod" in table and "https://livy.example.com:8998" in table and "pa55" not in table
    again = cli("fabric", "add", "prod", "--url", "https://other", stdin="")
    assert again.returncode == 1 and "exists; use --replace" in again.stderr
    assert cli("fabric", "remove", "prod").returncode == 0
    assert [f["name"] for f in json.loads(cli("fabric", "list", "--json").stdout)] == ["local"]


@pytest.mark.parametrize(
    "args,message",
    [
        (["fabric", "add", "bad name", "--url", "http://x"], "name:"),
        (["fabric", "add", "x", "--url", "ftp://x"], "url: must be an http"),
        (["fabric", "add", "x", "--url", "http://x", "--header", "novalue"], "--header takes KEY=VALUE"),
        (["fabric", "add", "x", "--url", "http://x", "--job-size", "M={bad"], "--job-size M: not JSON"),
        (["fabric", "add", "x", "--url", "http://x", "--auth", "basic"], "basic auth needs --username"),
        (["fabric", "add", "local", "--url", "http://x"], "built in"),
        (["fabric", "remove", "local"], "built in"),
        (["exec", "--fabric", "nope", "1"], "No fabric named 'nope'"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(data_dir, args, message):
    result = cli(*args, stdin="secret")
    assert result.returncode == 1
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_secrets_are_never_taken_from_the_command_line(data_dir):
    result = cli("fabric", "add", "x", "--url", "http://x", "--auth", "bearer", "--token", "abc")
    assert result.returncode == 2 and "unrecognized arguments: --token" in result.stderr
    empty = cli("fabric", "add", "x", "--url", "http://x", "--auth", "bearer", stdin="")
    assert empty.returncode == 1 and "secret is empty" in empty.stderr


@pytest.mark.spark
def test_exec_runs_python_and_sql_and_fails_with_the_remote_error(data_dir, gateway):
    assert (
        cli("fabric", "add", "gw", "--url", gateway.url, "--auth", "bearer", stdin=gateway.token).returncode
        == 0
    )
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
