"""Snowflake fabrics: settings validated field by field, and the connection check logging in with
each auth mode through the real connector against the stand-in (fakesnow behind a front that
checks logins, roles and warehouses as Snowflake does)."""

from __future__ import annotations

import json
import socket
import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from prophecy_jupyter.errors import Invalid
from prophecy_jupyter.services.connection_test import test_connection as check
from prophecy_jupyter.services.fabrics import Fabric, parse_spec
from tests.servers.snowflake import Accounts, snowflake_stand_in

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PEM = KEY.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
).decode()
ENCRYPTED_PEM = KEY.private_bytes(
    serialization.Encoding.PEM,
    serialization.PrivateFormat.PKCS8,
    serialization.BestAvailableEncryption(b"open sesame"),
).decode()


@pytest.fixture(scope="module")
def stand_in():
    accounts = Accounts(
        passwords={"ana": "ana-password"},
        tokens={"bo": "bo-token"},
        public_keys={"kai": KEY.public_key()},
        roles={"ana": {"ANALYST"}},
        warehouses={"COMPUTE_WH", "NIGHTLY_WH", "FROZEN_WH"},
        suspended={"NIGHTLY_WH": True, "FROZEN_WH": False},
    )
    with snowflake_stand_in(accounts) as server:
        yield server


def fabric(stand_in, **settings) -> Fabric:
    values = {"account": "fakesnow", "user": "ana", "host": "127.0.0.1", "port": stand_in.port}
    spec = parse_spec(
        {"name": "sf", "kind": "snowflake", "settings": {"protocol": "http", **values, **settings}}
    )
    return Fabric(id="f1", team="data", name=spec.name, kind=spec.kind, settings=spec.settings)


@pytest.mark.parametrize(
    ("settings", "field", "message"),
    [
        ({"account": "my org"}, "settings.account", "account identifier"),
        ({"user": "ana smith"}, "settings.user", "login name"),
        ({"auth": "kerberos"}, "settings.auth", "password"),
        ({"warehouse": "wh; drop table x"}, "settings.warehouse", "identifier"),
        ({"host": "https://x.example.com"}, "settings.host", "without scheme"),
        ({"port": 8080}, "settings.port", "with host"),
        ({"host": "sf.example.com", "protocol": "http"}, "settings.protocol", "unencrypted"),
        ({"login_timeout": 0}, "settings.login_timeout", "greater than 0"),
        ({"password": "x"}, "settings.password", "Extra inputs"),
    ],
)
def test_a_bad_setting_is_refused_naming_its_field(settings, field, message):
    values = {"account": "myorg-acct", "user": "ana", **settings}
    with pytest.raises(Invalid, match=message) as refused:
        parse_spec({"name": "sf", "kind": "snowflake", "settings": values})
    assert refused.value.field == field


def test_settings_name_what_each_user_brings_and_where_it_goes():
    def typed(**settings):
        spec = parse_spec(
            {"name": "sf", "kind": "snowflake", "settings": {"account": "a-b", "user": "u", **settings}}
        )
        return Fabric(id="x", team="t", name="sf", kind="snowflake", settings=spec.settings)

    assert typed().secret_needed == "password"
    assert typed(auth="key-pair").secret_needed == "private key"
    assert typed(auth="oauth").secret_needed == "OAuth token"
    assert typed(auth="pat").secret_needed == "programmatic access token"
    assert typed().endpoint == "a-b.snowflakecomputing.com"
    assert typed(host="sf.internal.example.com").endpoint == "https://sf.internal.example.com"
    assert (
        typed(warehouse='"Mixed Case"', role="ANALYST").typed_settings.connection().warehouse
        == '"Mixed Case"'
    )


@pytest.mark.parametrize(
    ("user", "auth", "secret"),
    [
        ("ana", "password", "ana-password"),
        ("bo", "oauth", "bo-token"),
        ("bo", "pat", "bo-token"),
        ("kai", "key-pair", PEM),
        ("kai", "key-pair", ENCRYPTED_PEM + "\nopen sesame\n"),
    ],
)
def test_each_auth_mode_logs_in_with_the_users_own_secret(stand_in, user, auth, secret):
    report = check(fabric(stand_in, user=user, auth=auth), secret)
    assert report.ok, report
    assert f"auth: {user} logged in with {auth}" in report.steps
    assert stand_in.accounts.logins[-1]["user"] == user


def test_a_refused_login_says_which_fabric_and_which_auth_mode(stand_in):
    report = check(fabric(stand_in), "not-her-password")
    assert (report.ok, report.stage) == (False, "auth")
    assert "Fabric 'data/sf'" in report.message and "ana's login with password" in report.message
    assert "not-her-password" not in report.message


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ("not a key", "not a PEM key"),
        (ENCRYPTED_PEM, "encrypted: give its passphrase"),
        (ENCRYPTED_PEM + "\nwrong passphrase", "wrong passphrase"),
    ],
)
def test_a_private_key_that_cannot_be_used_is_said_before_any_login(stand_in, secret, message):
    logins = len(stand_in.accounts.logins)
    report = check(fabric(stand_in, user="kai", auth="key-pair"), secret)
    assert (report.ok, report.stage) == (False, "credentials") and message in report.message
    assert len(stand_in.accounts.logins) == logins


def test_a_role_not_granted_or_a_missing_warehouse_is_named(stand_in):
    granted = check(fabric(stand_in, role="ANALYST", warehouse="COMPUTE_WH"), "ana-password")
    assert granted.ok and granted.steps[-2:] == ["role: ANALYST", "warehouse: COMPUTE_WH (started)"]
    role = check(fabric(stand_in, role="SYSADMIN"), "ana-password")
    assert (role.ok, role.stage) == (False, "resource") and "role SYSADMIN" in role.message
    assert "not assigned" in role.message
    warehouse = check(fabric(stand_in, warehouse="NOPE_WH"), "ana-password")
    assert (warehouse.ok, warehouse.stage) == (False, "resource") and "warehouse NOPE_WH" in warehouse.message


def test_a_suspended_warehouse_is_said_and_refused_when_it_does_not_resume_itself(stand_in):
    resumes = check(fabric(stand_in, warehouse="NIGHTLY_WH"), "ana-password")
    assert resumes.ok and resumes.steps[-1] == "warehouse: NIGHTLY_WH (suspended; the first query resumes it)"
    stays = check(fabric(stand_in, warehouse="FROZEN_WH"), "ana-password")
    assert (stays.ok, stays.stage) == (False, "resource"), stays
    assert "Warehouse FROZEN_WH is suspended and does not resume by itself" in stays.message
    assert "ALTER WAREHOUSE FROZEN_WH RESUME" in stays.message


def test_an_account_out_of_reach_is_said_within_the_login_timeout(stand_in):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    started = time.monotonic()
    report = check(fabric(stand_in, port=closed, login_timeout=5), "ana-password")
    assert (report.ok, report.stage) == (False, "tcp")
    assert time.monotonic() - started < 5


def test_the_command_line_adds_a_fabric_with_a_key_file_and_tests_it(stand_in, data_dir, tmp_path):
    from tests.test_cli import cli

    key_file = tmp_path / "rsa_key.p8"
    key_file.write_text(ENCRYPTED_PEM)
    flags = ["--host", "127.0.0.1", "--port", str(stand_in.port), "--protocol", "http"]
    flags += ["--login-timeout", "20"]
    added = cli(
        "fabric", "add", "sf", "--kind", "snowflake", "--account", "fakesnow", "--user", "kai",
        "--role", "ANALYST", *flags, "--auth", "key-pair", "--from-file", str(key_file),
        stdin="open sesame\n",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert "Your private key is stored encrypted in the vault" in added.stdout
    listed = json.loads(cli("fabric", "list", "--json").stdout)
    [fabric] = [f for f in listed if f["name"] == "sf"]
    assert fabric["settings"]["login_timeout"] == 20 and fabric["settings"]["port"] == stand_in.port
    tested = cli("fabric", "test", "sf")
    assert tested.returncode == 1 and "role ANALYST" in tested.stdout + tested.stderr, "not granted to kai"
    assert cli("fabric", "edit", "sf", "--role", "PUBLIC").returncode == 0
    stand_in.accounts.roles["kai"] = {"PUBLIC"}
    tested = cli("fabric", "test", "sf")
    assert tested.returncode == 0 and "kai logged in with key-pair" in tested.stdout, tested.stdout

    key_file.write_text("-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n")
    refused = cli("credentials", "set", "sf", "--from-file", str(key_file))
    assert refused.returncode == 1 and "could not be read" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    remote = cli("fabric", "add", "sf2", "--kind", "snowflake", "--account", "a", "--user", "u", "--host",
                 "sf.example.com", "--protocol", "http", "--no-secret")  # fmt: skip
    assert remote.returncode == 1 and "settings.protocol" in remote.stderr
    stored = "".join(f.read_bytes().decode("latin-1") for f in data_dir.rglob("*") if f.is_file())
    assert "-----BEGIN" not in stored
    assert ENCRYPTED_PEM.splitlines()[1] not in stored and "open sesame" not in stored


def test_connections_toml_becomes_fabrics_and_the_importers_credentials(
    stand_in, data_dir, tmp_path, monkeypatch
):
    from tests.test_cli import cli

    key_file, token_file = tmp_path / "kai.p8", tmp_path / "bo.token"
    key_file.write_text(ENCRYPTED_PEM)
    token_file.write_text("bo-token\n")
    here = f'host = "127.0.0.1"\nport = {stand_in.port}\nprotocol = "http"\naccount = "fakesnow"'
    home = tmp_path / "snowflake-home"
    home.mkdir()
    (home / "connections.toml").write_text(
        f"""
[dev]
{here}
user = "ana"
password = "ana-password"
warehouse = "COMPUTE_WH"
client_session_keep_alive = true

[etl]
{here}
user = "kai"
authenticator = "SNOWFLAKE_JWT"
private_key_file = "{key_file}"
private_key_file_pwd = "open sesame"

[bi]
{here}
user = "bo"
authenticator = "oauth"
token_file_path = "{token_file}"

[sso]
account = "myorg-acct"
user = "ana"
authenticator = "externalbrowser"

[plain]
account = "myorg-acct"
user = "ana"
host = "sf.example.com"
protocol = "http"
password = "x"
"""
    )
    (home / "connections.toml").chmod(0o644)
    monkeypatch.setenv("SNOWFLAKE_HOME", str(home))
    unknown = cli("import-snowflake", "prod")
    assert unknown.returncode == 1 and "No connection prod" in unknown.stderr and "dev" in unknown.stderr
    imported = cli("import-snowflake")
    assert imported.returncode == 0, imported.stderr
    lines = imported.stdout.splitlines()
    for name in ("dev", "etl", "bi"):
        assert f"created fabric default/{name} with your secret stored encrypted" in lines
    assert any(line.startswith("skipped sso (authenticator externalbrowser") for line in lines)
    assert any(line.startswith("skipped plain (") and "settings.protocol" in line for line in lines)
    assert "note: dev: client_session_keep_alive left out (not fabric settings)" in lines
    assert any("can be read by others" in line for line in lines)
    for name in ("dev", "etl", "bi"):
        tested = cli("fabric", "test", name)
        assert tested.returncode == 0, (name, tested.stdout, tested.stderr)
    listed = {f["name"]: f["settings"] for f in json.loads(cli("fabric", "list", "--json").stdout)}
    assert listed["etl"]["auth"] == "key-pair" and listed["bi"]["auth"] == "oauth"
    assert "ana-password" not in json.dumps(listed) and listed["dev"]["warehouse"] == "COMPUTE_WH"
    again = cli("import-snowflake", "dev", "--connections-file", str(home / "connections.toml"))
    assert "skipped default/dev (exists)" in again.stdout
    stored = "".join(f.read_bytes().decode("latin-1") for f in data_dir.rglob("*") if f.is_file())
    assert not any(secret in stored for secret in ("ana-password", "bo-token", "open sesame", "-----BEGIN"))


def test_a_key_pasted_into_one_line_is_read_as_the_key_it_is(stand_in):
    pasted = " ".join(ENCRYPTED_PEM.split("\n")) + " open sesame"
    assert "\n" not in pasted
    report = check(fabric(stand_in, user="kai", auth="key-pair"), pasted)
    assert report.ok, report


def test_the_command_line_runs_python_and_sql_on_a_snowflake_fabric(stand_in, data_dir):
    from tests.test_cli import cli

    place = ["--host", "127.0.0.1", "--port", str(stand_in.port), "--protocol", "http"]
    added = cli("fabric", "add", "sf", "--kind", "snowflake", "--account", "fakesnow", "--user", "ana",
                *place, stdin="ana-password\n")  # fmt: skip
    assert added.returncode == 0, added.stderr
    python = cli("exec", "--fabric", "sf", "print(session.sql('select 21 as x').collect()[0]['X'] * 2)")
    assert python.returncode == 0 and python.stdout.strip() == "42", python.stderr
    query = "select 1.5::number(4,1) as n, 'x' as s"
    sql = cli("exec", "--fabric", "sf", "--language", "sql", "--json", query)
    assert sql.returncode == 0, sql.stderr
    table = json.loads(sql.stdout)
    assert table["columns"] == [
        {"name": "N", "dtype": "decimal128(4, 1)[pyarrow]"},
        {"name": "S", "dtype": "string"},
    ]
    assert table["data"] == [["1.5", "x"]]
    bound = cli(
        "exec", "--fabric", "sf", "--language", "sql", "--json", "-p", "n:int=2", "select :n + 1 as x"
    )
    assert bound.returncode == 0 and json.loads(bound.stdout)["data"] == [["3"]], bound.stderr  # NUMBER(38,0)
    failed = cli("exec", "--fabric", "sf", "--language", "sql", "select * from NOPE")
    assert failed.returncode == 1 and "090105 (22000): Cannot perform SELECT" in failed.stderr, failed.stderr
