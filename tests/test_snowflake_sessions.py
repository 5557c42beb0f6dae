"""Cells on a Snowflake fabric: Snowpark sessions run by this machine's gateway (the product's own
path: the services start it), logged in through the real connector to the stand-in (fakesnow
behind our login-checking front). Python cells keep their state with ``session`` bound, SQL comes
back typed by Snowflake's column types, a Snowpark DataFrame is fetched the same way."""

from __future__ import annotations

import datetime
import decimal
import os
import subprocess
import sys
import time
import uuid
from functools import partial

import pandas as pd
import pyarrow as pa
import pytest

from prophecy_jupyter.errors import EngineError, Invalid
from prophecy_jupyter.results.model import RunState
from prophecy_jupyter.services.runtime import build_services
from prophecy_jupyter.sql_parameters import SqlParameter
from tests import waiting
from tests.conftest import USER
from tests.servers.git_http import served_project
from tests.servers.snowflake import Accounts, snowflake_stand_in
from tests.test_vault import new_key

wait_until = partial(waiting.wait_until, timeout=20.0, every=0.02)

NOTEBOOK = "snow.ipynb"


@pytest.fixture(scope="module")
def stand_in():
    with snowflake_stand_in(Accounts(passwords={"ana": "ana-password"})) as server:
        yield server


@pytest.fixture(scope="module")
def built(tmp_path_factory, stand_in):
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PROPHECY_JUPYTER_KEY", new_key())
        services = build_services(tmp_path_factory.mktemp("prophecy-data"), bootstrap_user=USER)
        settings = {"account": "fakesnow", "user": "ana", "host": "127.0.0.1", "port": stand_in.port}
        spec = {"name": "sf", "kind": "snowflake", "settings": {**settings, "protocol": "http"}}
        fabric = services.fabrics.create(USER, "default", spec)
        services.fabrics.set_secret(USER, fabric.id, "ana-password")
        wrong = services.fabrics.create(USER, "default", {**spec, "name": "sf-wrong"})
        services.fabrics.set_secret(USER, wrong.id, "not-her-password")
        yield services
        services.close()


@pytest.fixture(scope="module")
def sessions(built):
    service = built.sessions
    setup = (
        "session.sql('create database if not exists DB1').collect()\n"
        "session.use_database('DB1')\n"
        "session.sql('create schema if not exists S1').collect()\n"
        "session.use_schema('S1')\n"
        "session.sql('''create or replace table T (i number(9,0), l number(18,0), big number(38,0),"
        " n number(10,2), f float, s varchar, b boolean, d date, ts timestamp_ntz, v variant, bin binary)''')"
        ".collect()\n"
        "session.sql('''insert into T select 1, 10000000000, 1234567890123456789,"
        " 1.25, 2.5, 'x', true,"
        " '2024-01-02', '2024-01-02 03:04:05', parse_json('{\"k\": [1, 2]}'), to_binary('6869', 'HEX')''')"
        ".collect()\n"
        "session.sql('insert into T (i) values (null)').collect()\n"
    )
    run = service.run(USER, NOTEBOOK, "default/sf", setup)
    assert run.state == RunState.FINISHED, run.result
    return service


def test_python_cells_run_with_session_bound_and_keep_their_state(sessions):
    first = sessions.run(USER, NOTEBOOK, "default/sf", "x = session.sql('select 41 as a').collect()[0]['A']")
    again = sessions.run(USER, NOTEBOOK, "default/sf", "x + 1")
    assert (first.state, again.state) == (RunState.FINISHED, RunState.FINISHED)
    assert again.result.text == "42"
    assert first.session is again.session


NULL_TIMESTAMPS = "select null::timestamp_ltz as ltz, '2024-01-02 03:04:05'::timestamp_tz as tz"


def test_sql_comes_back_typed_by_snowflakes_column_types(sessions):
    result = sessions.fetch_sql(USER, NOTEBOOK, "default/sf", "select * from T order by i nulls last", 100)
    frame = result.table
    assert frame is not None, (result.error_message, result.traceback)
    assert {name: str(dtype) for name, dtype in frame.dtypes.items()} == {
        "I": "Int32",
        "L": "Int64",
        "BIG": "decimal128(38, 0)[pyarrow]",
        "N": "decimal128(10, 2)[pyarrow]",
        "F": "Float64",
        "S": "string",
        "B": "boolean",
        "D": "date32[day][pyarrow]",
        "TS": "datetime64[us]",
        "V": "object",
        "BIN": "binary[pyarrow]",
    }
    row = frame.iloc[0]
    assert (row["I"], row["L"], row["BIG"]) == (1, 10_000_000_000, decimal.Decimal("1234567890123456789"))
    assert row["N"] == decimal.Decimal("1.25") and row["S"] == "x" and bool(row["B"]) is True
    assert row["D"] == datetime.date(2024, 1, 2) and row["TS"] == pd.Timestamp("2024-01-02 03:04:05")
    assert row["V"] == {"k": [1, 2]} and row["BIN"] == b"hi"
    nulls = frame.iloc[1]
    # fakesnow answers a NULL timestamp as 1970-01-01 (a known quirk of fakesnow, not of
    # Snowflake); the stand-in answers NULL, as Snowflake does, and the frame keeps it NULL.
    assert all(pd.isna(nulls[c]) for c in ("I", "L", "BIG", "N", "F", "S", "B", "D", "TS", "V", "BIN"))
    zoned = sessions.fetch_sql(USER, NOTEBOOK, "default/sf", NULL_TIMESTAMPS, 10).table
    assert [str(t) for t in zoned.dtypes] == ["datetime64[us, Etc/UTC]"] * 2, zoned.dtypes
    assert pd.isna(zoned["LTZ"][0]) and zoned["TZ"][0] == pd.Timestamp("2024-01-02 03:04:05", tz="UTC")
    again = sessions.fetch_sql(USER, NOTEBOOK, "default/sf", "select 1 as one", 100).table
    query_ids = (frame.attrs["query_id"], again.attrs["query_id"])
    assert all(uuid.UUID(q) for q in query_ids) and query_ids[0] != query_ids[1], (
        "each result names its query"
    )


def test_a_snowpark_dataframe_is_fetched_typed_and_a_limit_says_it_cut(sessions):
    sessions.run(USER, NOTEBOOK, "default/sf", "df = session.table('T').select('I', 'N')")
    result = sessions.fetch_table(USER, NOTEBOOK, "default/sf", "df", 1)
    assert list(result.table.columns) == ["I", "N"] and len(result.table) == 1
    assert str(result.table.dtypes["N"]) == str(pd.ArrowDtype(pa.decimal128(10, 2)))
    assert result.truncated


def test_a_sql_error_fails_with_snowflakes_code_state_and_message(sessions):
    result = sessions.fetch_sql(USER, NOTEBOOK, "default/sf", "select * from NO_SUCH_TABLE", 10)
    assert not result.ok and result.error_name == "ProgrammingError"
    assert (
        result.error_message.startswith("002003 (42S02)") and "NO_SUCH_TABLE" in result.error_message.upper()
    )


def test_a_refused_login_says_which_fabric_and_auth_mode(built):
    with pytest.raises(EngineError) as refused:
        built.sessions.run(USER, "other.ipynb", "default/sf-wrong", "1")
    message = str(refused.value)
    assert "fabric 'default/sf-wrong'" in message and "login of ana (authenticator SNOWFLAKE)" in message
    assert "390100" in message and "Incorrect username or password" in message
    assert "not-her-password" not in message


def held_queries(stand_in) -> int:
    """How many queries the stand-in holds or has held (asynchronous ones are kept)."""
    return sum(map(len, stand_in.accounts.held.values())) + len(stand_in.accounts.held_async)


@pytest.mark.parametrize("how", ["python", "sql"])
def test_cancel_stops_the_query_on_the_warehouse_and_the_session_keeps_its_state(sessions, stand_in, how):
    sessions.run(USER, NOTEBOOK, "default/sf", "kept = 7")
    cancels, held = len(stand_in.accounts.cancels), held_queries(stand_in)
    if how == "python":
        run = sessions.submit(USER, NOTEBOOK, "default/sf", "session.sql('select 1 /* hold */').collect()")
    else:
        run = sessions.submit_sql(USER, NOTEBOOK, "default/sf", "select 1 /* hold */", 10)
    wait_until(lambda: held_queries(stand_in) > held)
    if how == "sql":
        wait_until(lambda: run.detail is not None)  # the interpreter knows the query's id
    started = time.monotonic()
    sessions.cancel(run)
    assert run.wait(15) and run.state == RunState.CANCELLED, run.result
    assert time.monotonic() - started < 10
    assert len(stand_in.accounts.cancels) > cancels, "the warehouse was asked to cancel the query"
    if how == "sql":  # its id is known: that query is cancelled, not the session's others
        [query_id] = list(stand_in.accounts.held_async)[-1:]
        assert stand_in.accounts.cancels[-1] == f"SELECT SYSTEM$CANCEL_QUERY('{query_id}')", (
            stand_in.accounts.cancels
        )
    assert sessions.run(USER, NOTEBOOK, "default/sf", "kept").result.text == "7"


def test_a_running_query_reports_its_id_and_state_as_progress(sessions, stand_in):
    held = held_queries(stand_in)
    run = sessions.submit_sql(USER, NOTEBOOK, "default/sf", "select 2 /* hold */", 10)
    seen: list[str] = []

    def running() -> bool:
        detail = run.detail
        if detail and detail not in seen:
            seen.append(detail)
        return bool(detail) and " running, " in detail

    wait_until(running)
    assert held_queries(stand_in) == held + 1
    query_id = list(stand_in.accounts.held_async)[-1]
    states = [d.removeprefix(f"query {query_id} ").split(",")[0] for d in seen]
    assert [s for s in states if s != "submitted"][:1] == ["queued"] and states[-1] == "running", seen
    assert run.describe()["detail"] == run.detail, "the API's run carries it"
    sessions.cancel(run)
    assert run.wait(15) and run.state == RunState.CANCELLED
    assert run.detail is None


def test_no_secret_in_clear_in_the_data_dir_or_the_sessions_logs(built, sessions):
    sessions.run(USER, NOTEBOOK, "default/sf", "print('logged')")
    [managed] = [m for m in sessions.sessions_of(USER, NOTEBOOK) if m.fabric.ref == "default/sf"]
    logs = "\n".join(sessions.logs(managed, 1000))
    assert "ready: Snowflake session" in logs
    files = [f for f in built.directory.rglob("*") if f.is_file()]
    assert files, "the data dir holds the store, the gateway's logs and work files"
    for text in [logs, *(f.read_bytes().decode("latin-1") for f in files)]:
        assert "ana-password" not in text and "not-her-password" not in text


ORDERS_CELL = """%%spark
session.sql('create database if not exists PIPE').collect()
session.use_database('PIPE')
session.sql('create schema if not exists S').collect()
session.use_schema('S')
session.sql('create or replace table ORDERS (id number(9,0), region varchar)').collect()
values = ", ".join(f"({i}, '{['north', 'south'][i % 2]}')" for i in range(rows))
session.sql(f"insert into ORDERS values {values}").collect()
print(f"{session.table('ORDERS').count()} orders")"""
BY_REGION = (
    "select region, count(*)::number(9,0) as n from ORDERS where id >= :low group by region order by region"
)
LOW = SqlParameter("low", "0", "INT")


def code_cell(source: str, tags: tuple[str, ...] = ()) -> dict:
    return {"cell_type": "code", "metadata": {"tags": list(tags)}, "source": source, "outputs": []}


def test_a_snowflake_notebook_becomes_a_snowpark_pipeline_with_the_notebooks_results(
    built, sessions, stand_in, tmp_path
):
    with served_project(built, tmp_path / "served", "warehouse", "ghp_" + "Sn0w" * 9, USER):
        cells = [
            code_cell("rows = 5", ("parameters",)),
            code_cell(ORDERS_CELL),
            code_cell(f"%%sql -o by_region -p low:int=0\n{BY_REGION}"),
            code_cell("by_region"),
        ]
        notebook = {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
        fabric = built.fabrics.get(USER, "default/sf")
        pipeline, _ = built.projects.generate(USER, "warehouse", notebook, "orders.ipynb", None, fabric)
        code = pipeline.files()["pipelines/orders/pipeline.py"].decode()
        assert pipeline.flavor == "snowpark" and len(pipeline.steps) == 2
        assert "def main(session_, rows=5):" in code and "by_region = session.sql(" in code
        assert "where id >= ? group by" in code and "params=[('FIXED', 0)]" in code
        built.projects.commit(USER, "warehouse", "Add orders")

        notebook_run = sessions.run(USER, "orders.ipynb", "default/sf", "rows = 5\n" + ORDERS_CELL[8:])
        expected = sessions.fetch_sql(USER, "orders.ipynb", "default/sf", BY_REGION, -1, [LOW]).table
        run = built.pipeline_runs.run(USER, "warehouse", "orders", "default/sf", {"rows": "5"})
        assert run.ok and run.how == "session", run.output
        assert run.output.splitlines() == [notebook_run.result.text.strip(), "Pipeline orders ran 2 step(s)."]
        in_pipeline = "pipeline:warehouse:orders"
        produced = sessions.fetch_table(USER, in_pipeline, "default/sf", "by_region", -1).table
        assert produced.equals(expected) and list(produced.dtypes) == list(expected.dtypes)
        assert list(produced["N"]) == [3, 2]
        with pytest.raises(Invalid, match="generated for another kind of fabric than local"):
            built.pipeline_runs.run(USER, "warehouse", "orders", "local", {})

        home = tmp_path / "snowflake-home"
        home.mkdir()
        place = f'host = "127.0.0.1"\nport = {stand_in.port}\nprotocol = "http"\naccount = "fakesnow"'
        (home / "connections.toml").write_text(f'[dev]\n{place}\nuser = "ana"\npassword = "ana-password"\n')
        (home / "connections.toml").chmod(0o600)
        folder = built.projects.working_copy(USER, built.projects.get(USER, "warehouse")) / "pipelines/orders"
        alone = subprocess.run(
            [sys.executable, "pipeline.py", "--connection", "dev", "--rows", "3"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "SNOWFLAKE_HOME": str(home)},
        )
        assert alone.returncode == 0 and alone.stdout.splitlines()[:1] == ["3 orders"], alone.stderr[-2000:]


def test_sql_parameters_are_bound_by_snowflake_typed_never_spliced_into_the_text(sessions):
    hostile = "x' or '1'='1 \\"
    parameters = [
        SqlParameter("i", "1", "INT"),
        SqlParameter("n", "1.25", "DECIMAL(10,2)"),
        SqlParameter("s", "x"),
        SqlParameter("b", "true", "BOOLEAN"),
        SqlParameter("d", "2024-01-02", "DATE"),
        SqlParameter("f", "2", "DOUBLE"),
        SqlParameter("hostile", hostile),
    ]
    query = (
        "select i, n, ':s' as kept, i::varchar as cast_kept, :hostile as echo from T"
        " where i = :i and n = :n and s = :s and b = :b and d = :d and f > :f"
    )
    result = sessions.fetch_sql(USER, NOTEBOOK, "default/sf", query, 10, parameters)
    frame = result.table
    assert frame is not None, (result.error_message, result.traceback)
    assert frame.to_dict("records") == [
        {"I": 1, "N": decimal.Decimal("1.25"), "KEPT": ":s", "CAST_KEPT": "1", "ECHO": hostile}
    ]
    higher = [*parameters[:-2], SqlParameter("f", "3", "DOUBLE"), parameters[-1]]
    nothing = sessions.fetch_sql(USER, NOTEBOOK, "default/sf", query, 10, higher)
    assert nothing.ok and len(nothing.table) == 0, "the values are what filters"
    with pytest.raises(Invalid, match="SQL parameter s is not used in the query"):
        sessions.fetch_sql(USER, NOTEBOOK, "default/sf", "select ':s'", 10, [SqlParameter("s", "x")])


@pytest.mark.parametrize("how", ["sql", "python"])
def test_a_dropped_connection_is_retried_and_no_statement_runs_twice(sessions, stand_in, how):
    table = f"HITS_{how.upper()}"
    create = f"session.sql('create or replace table {table} (n number(9,0))').collect()"
    assert sessions.run(USER, NOTEBOOK, "default/sf", create).state == RunState.FINISHED
    insert = f"insert into {table} values (1) /* drop */"
    dropped = len(stand_in.accounts.dropped)
    if how == "sql":
        result = sessions.fetch_sql(USER, NOTEBOOK, "default/sf", insert, 10)
        assert result.ok, result.error_message
    else:
        run = sessions.run(USER, NOTEBOOK, "default/sf", f"session.sql({insert!r}).collect()")
        assert run.state == RunState.FINISHED, run.result
    assert len(stand_in.accounts.dropped) == dropped + 1, "the front dropped the connection"
    assert list(stand_in.accounts.dropped)[-1] in stand_in.accounts.replayed, "the same request came again"
    count = sessions.fetch_sql(USER, NOTEBOOK, "default/sf", f"select count(*) as n from {table}", 10)
    assert list(count.table["N"]) == [1], "the insert ran once"


def test_a_job_becomes_procedures_and_tasks_deployed_through_the_users_session(
    built, sessions, stand_in, tmp_path
):
    import sqlglot
    from sqlglot import exp

    with served_project(built, tmp_path / "served", "tasks", "ghp_" + "T4sk" * 9, USER):
        cells = [code_cell("rows = 5", ("parameters",)), code_cell(ORDERS_CELL)]
        notebook = {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
        built.projects.generate(
            USER, "tasks", notebook, "orders.ipynb", None, built.fabrics.get(USER, "default/sf")
        )
        built.projects.commit(USER, "tasks", "Add orders")
        nightly = {"cron": "0 2 * * *", "timezone": "Europe/Paris"}
        spec = {"name": "nightly", "pipelines": ["orders"], "fabric": "sf", "schedule": nightly, "retries": 1}
        built.jobs.create(USER, "tasks", {**spec, "parameters": {"rows": "7"}})
        with pytest.raises(Invalid, match="needs a database and a schema for job nightly") as nowhere:
            built.jobs.export(USER, "tasks", "nightly")
        assert nowhere.value.field == "fabric"
        place = {**built.fabrics.get(USER, "default/sf").settings, "database": "PIPE", "schema": "S"}
        jobs_fabric = built.fabrics.create(
            USER, "default", {"name": "sf-jobs", "kind": "snowflake", "settings": place}
        )
        built.fabrics.set_secret(USER, jobs_fabric.id, "ana-password")
        spec["fabric"] = "sf-jobs"
        built.jobs.create(USER, "tasks", {**spec, "parameters": {"rows": "7"}}, replace=True)

        exported, changed, target = built.jobs.export(USER, "tasks", "nightly", "snowflake")
        assert target == "snowflake"
        with pytest.raises(Invalid, match="whose scheduler takes snowflake, not airflow") as other:
            built.jobs.export(USER, "tasks", "nightly", "airflow")
        assert other.value.field == "format"
        assert changed == ["jobs/nightly.snowflake.sql"]
        procedure, task, *resumed = exported.statements
        create = sqlglot.parse_one(procedure, read="snowflake")  # sqlglot reads procedures whole
        assert isinstance(create, exp.Create) and create.args["kind"] == "PROCEDURE"
        assert [argument.name for argument in create.this.expressions] == ["ROWS"]
        committed = built.projects.pipeline_files(USER, "tasks", "orders")["pipelines/orders/pipeline.py"]
        assert f"AS $$\n{committed.decode().rstrip()}\n$$" in procedure, "the committed code, inline"
        assert (
            "SCHEDULE = 'USING CRON 0 2 * * * Europe/Paris'" in task
            and "TASK_AUTO_RETRY_ATTEMPTS = 1" in task
        )
        call = sqlglot.parse_one("SELECT " + task.split("CALL ", 1)[1], read="snowflake").expressions[0]
        assert call.name == "PROPHECY_TASKS_ORDERS"
        assert {kwarg.this.name: kwarg.expression.to_py() for kwarg in call.expressions} == {"ROWS": 7}
        assert resumed == ["ALTER TASK NIGHTLY RESUME"]

        sent = len(stand_in.accounts.scheduled)
        assert (
            built.jobs.deploy(USER, "tasks", "nightly")
            == "Deployed job nightly to default/sf-jobs: 3 statement(s) run."
        )
        assert stand_in.accounts.scheduled[sent:] == exported.statements, "exactly that SQL, in that order"
        for content in exported.files.values():
            assert "ana-password" not in content.decode(), "a job holds no secret"

        run_id = built.jobs.run_now(USER, "tasks", "nightly")
        run = built.jobs.wait_for_run(USER, "tasks", "nightly", run_id, timeout=120, poll=0.5)
        assert (run.state, run.result, run.error) == ("SUCCESS", "Pipeline orders ran 1 step(s).", None)
        assert run.started <= run.ended
        assert [listed.run_id for listed in built.jobs.runs(USER, "tasks", "nightly")] == [run_id]
        made = sessions.fetch_sql(USER, NOTEBOOK, "default/sf", "select count(*) as n from PIPE.S.ORDERS", 10)
        assert list(made.table["N"]) == [7], "the task ran the committed pipeline with the job's values"

        built.jobs.create(USER, "tasks", {**spec, "name": "broken", "parameters": {"rows": "-1"}})
        built.jobs.deploy(USER, "tasks", "broken")
        broken = built.jobs.run_now(USER, "tasks", "broken")
        failed = built.jobs.wait_for_run(USER, "tasks", "broken", broken, timeout=120, poll=0.5)
        assert failed.state == "FAILED" and "001003 (42000)" in failed.error, failed  # what Snowflake said
        with pytest.raises(Invalid, match=f"Run {broken} of job broken is not running"):
            built.jobs.cancel(USER, "tasks", "broken", broken)

        sent = len(stand_in.accounts.scheduled)
        built.jobs.pause(USER, "tasks", "nightly")
        built.jobs.resume(USER, "tasks", "nightly")
        built.jobs.undeploy(USER, "tasks", "nightly")
        assert stand_in.accounts.scheduled[sent:] == [
            "ALTER TASK NIGHTLY SUSPEND",
            "ALTER TASK NIGHTLY RESUME",
            "DROP TASK IF EXISTS NIGHTLY",
            "DROP PROCEDURE IF EXISTS PROPHECY_TASKS_ORDERS(NUMBER)",
        ]
