"""Cells on a ``snowpark-local`` fabric: Snowpark's own local testing (its DataFrame emulator, no
account) in an interpreter run by this machine's gateway, for the DataFrame-API code fakesnow's
server cannot serve (``create_dataframe`` gets HTTP 500 there, window functions, UDFs). Python
cells keep their state with ``session`` bound; a DataFrame comes back typed by its Snowpark schema;
SQL text is refused with the reason; a notebook becomes a Snowpark pipeline that runs the same on
the fabric and alone with ``--local-testing``."""

from __future__ import annotations

import datetime
import decimal
import subprocess
import sys
import uuid

import pandas as pd
import pytest

from prophecy_jupyter.results.model import RunState
from prophecy_jupyter.results.sending import arrow_table, encoded_parts, parse_sent
from prophecy_jupyter.services.runtime import build_services
from tests.conftest import USER
from tests.servers.git_http import served_project
from tests.test_snowflake_sessions import code_cell, wait_until
from tests.test_vault import new_key

NOTEBOOK = "emulated.ipynb"
FABRIC = "default/sp"

ORDERS = """from snowflake.snowpark import Window
from snowflake.snowpark import functions as F
from snowflake.snowpark import types as T
import datetime, decimal
schema = T.StructType([
    T.StructField("ID", T.LongType()), T.StructField("REGION", T.StringType()),
    T.StructField("AMOUNT", T.DecimalType(10, 2)), T.StructField("RATE", T.DoubleType()),
    T.StructField("PAID", T.BooleanType()), T.StructField("DAY", T.DateType()),
    T.StructField("AT", T.TimestampType(T.TimestampTimeZone.NTZ)), T.StructField("TAGS", T.VariantType()),
    T.StructField("RAW", T.BinaryType()),
])
orders = session.create_dataframe([
    (1, "north", decimal.Decimal("10.50"), 0.5, True, datetime.date(2024, 1, 2),
     datetime.datetime(2024, 1, 2, 3, 4, 5), {"k": [1, 2]}, b"hi"),
    (2, "south", decimal.Decimal("4.25"), None, False, datetime.date(2024, 1, 3),
     datetime.datetime(2024, 1, 3, 0, 0), None, None),
    (3, "north", decimal.Decimal("1.00"), 1.5, None, None, None, ["x"], b""),
], schema=schema)
by_amount = Window.partition_by("REGION").order_by(F.col("AMOUNT").desc())
ranked = orders.with_column("RANK", F.row_number().over(by_amount))
totals = orders.group_by("REGION").agg(F.sum("AMOUNT").alias("TOTAL"), F.count("ID").alias("N"))
totals = totals.sort("REGION")
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PROPHECY_JUPYTER_KEY", new_key())
        services = build_services(tmp_path_factory.mktemp("prophecy-data"), bootstrap_user=USER)
        services.fabrics.create(USER, "default", {"name": "sp", "kind": "snowpark-local", "settings": {}})
        yield services
        services.close()


@pytest.fixture(scope="module")
def sessions(built):
    run = built.sessions.run(USER, NOTEBOOK, FABRIC, ORDERS)
    assert run.state == RunState.FINISHED, run.result
    return built.sessions


def test_dataframe_cells_run_on_the_emulator_with_session_bound_and_keep_their_state(sessions):
    run = sessions.run(USER, NOTEBOOK, FABRIC, "[(r['ID'], r['RANK']) for r in ranked.sort('ID').collect()]")
    assert run.state == RunState.FINISHED, run.result
    assert run.result.text == "[(1, 1), (2, 1), (3, 2)]"
    [managed] = sessions.sessions_of(USER, NOTEBOOK)
    assert "ready: Snowpark local testing" in "\n".join(sessions.logs(managed, 100))


def test_a_dataframe_comes_back_typed_by_its_snowpark_schema(sessions):
    result = sessions.fetch_table(USER, NOTEBOOK, FABRIC, "orders.sort('ID')", 100)
    frame = result.table
    assert frame is not None, (result.error_message, result.traceback)
    assert {name: str(dtype) for name, dtype in frame.dtypes.items()} == {
        "ID": "Int64",
        "REGION": "string",
        "AMOUNT": "decimal128(10, 2)[pyarrow]",
        "RATE": "Float64",
        "PAID": "boolean",
        "DAY": "date32[day][pyarrow]",
        "AT": "datetime64[us]",
        "TAGS": "object",
        "RAW": "binary[pyarrow]",
    }
    first, second, third = (frame.iloc[i] for i in range(3))
    assert (first["ID"], first["REGION"], first["AMOUNT"]) == (1, "north", decimal.Decimal("10.50"))
    assert first["DAY"] == datetime.date(2024, 1, 2) and first["AT"] == pd.Timestamp("2024-01-02 03:04:05")
    assert first["TAGS"] == {"k": [1, 2]} and third["TAGS"] == ["x"] and first["RAW"] == b"hi"
    assert pd.isna(second["RATE"]) and pd.isna(second["TAGS"]) and pd.isna(second["RAW"])
    assert pd.isna(third["PAID"]) and pd.isna(third["DAY"]) and pd.isna(third["AT"]), "NULLs stay NULL"
    assert "query_id" not in frame.attrs, "the emulator runs no query"

    totals = sessions.fetch_table(USER, NOTEBOOK, FABRIC, "totals", 1)
    assert list(totals.table["REGION"]) == ["north"] and totals.truncated, "the limit cuts and says so"
    assert totals.table["TOTAL"][0] == decimal.Decimal("11.50") and totals.table["N"][0] == 2
    summed = sessions.fetch_table(USER, NOTEBOOK, FABRIC, "orders.agg(F.sum('ID').alias('S'))", 10).table
    assert list(summed["S"]) == [6], "the emulator's numpy and float values come back as the schema's type"


def test_sql_text_is_refused_with_the_reason_and_the_session_keeps_its_state(sessions):
    result = sessions.fetch_sql(USER, NOTEBOOK, FABRIC, "select 1", 10)
    assert not result.ok and "does not run under Snowpark's local testing" in result.error_message
    plain = sessions.run(USER, NOTEBOOK, FABRIC, "select 1", "sql")
    assert plain.state == RunState.FAILED and "local testing" in plain.result.error_message, plain.result
    assert sessions.run(USER, NOTEBOOK, FABRIC, "int(orders.count())").result.text == "3"


def test_cancel_interrupts_a_python_cell_and_the_session_keeps_its_state(sessions):
    run = sessions.submit(USER, NOTEBOOK, FABRIC, "import time\nwhile True:\n    time.sleep(0.05)")
    wait_until(lambda: run.state == RunState.RUNNING)
    sessions.cancel(run)
    assert run.wait(15) and run.state == RunState.CANCELLED, run.result
    assert sessions.run(USER, NOTEBOOK, FABRIC, "int(orders.count())").result.text == "3"


REGIONS = """%%spark
from snowflake.snowpark import functions as F
rows_ = [(i, ["north", "south"][i % 2]) for i in range(rows)]
orders = session.create_dataframe(rows_, schema=["ID", "REGION"])
by_region = orders.group_by("REGION").agg(F.count("ID").alias("N")).sort("REGION")
print(f"{orders.count()} orders")"""


def test_a_notebook_becomes_a_snowpark_pipeline_that_runs_the_same_on_the_fabric_and_alone(
    built, sessions, tmp_path
):
    with served_project(built, tmp_path / "served", "offline", "ghp_" + "L0cal" * 8, USER):
        cells = [code_cell("rows = 5", ("parameters",)), code_cell(REGIONS)]
        notebook = {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
        fabric = built.fabrics.get(USER, FABRIC)
        pipeline, _ = built.projects.generate(USER, "offline", notebook, "regions.ipynb", None, fabric)
        assert pipeline.flavor == "snowpark"
        built.projects.commit(USER, "offline", "Add regions")

        notebook_run = sessions.run(USER, "regions.ipynb", FABRIC, "rows = 5\n" + REGIONS[8:])
        expected = sessions.fetch_table(USER, "regions.ipynb", FABRIC, "by_region", -1).table
        run = built.pipeline_runs.run(USER, "offline", "regions", FABRIC, {"rows": "5"})
        assert run.ok and run.how == "session", run.output
        ran = "Pipeline regions ran 1 step(s)."
        assert run.output.splitlines() == [notebook_run.result.text.strip(), ran]
        produced = sessions.fetch_table(USER, "pipeline:offline:regions", FABRIC, "by_region", -1).table
        assert produced.equals(expected) and list(produced["N"]) == [3, 2]

        folder = built.projects.working_copy(USER, built.projects.get(USER, "offline")) / "pipelines/regions"
        alone = subprocess.run(
            [sys.executable, "pipeline.py", "--local-testing", "--rows", "4"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert alone.returncode == 0, alone.stderr[-2000:]
        assert alone.stdout.splitlines() == ["4 orders", "Pipeline regions ran 1 step(s)."]


def test_the_command_line_adds_a_snowpark_local_fabric_and_runs_dataframe_code_on_it(data_dir):
    from tests.test_cli import cli

    added = cli("fabric", "add", "offline", "--kind", "snowpark-local")
    assert added.returncode == 0 and "secret" not in added.stdout.lower(), (added.stdout, added.stderr)
    frame = "session.create_dataframe([[20], [22]], schema=['X'])"
    code = f"from snowflake.snowpark.functions import col\nprint({frame}.filter(col('X') > 21).first()['X'])"
    python = cli("exec", "--fabric", "offline", code)
    assert python.returncode == 0 and python.stdout.strip() == "22", python.stderr
    sql = cli("exec", "--fabric", "offline", "--language", "sql", "select 1")
    assert sql.returncode == 1 and "does not run under Snowpark's local testing" in sql.stderr, sql.stderr


def test_a_local_table_sent_to_a_snowpark_fabric_becomes_a_snowpark_dataframe(sessions):
    frame = pd.DataFrame(
        {
            "ID": pd.array([1, 2, None], dtype="Int64"),
            "REGION": pd.array(["north", None, "south"], dtype="string"),
            "RATE": [0.5, 1.5, 2.5],
            "PAID": [True, False, True],
        }
    )
    [data] = list(encoded_parts(arrow_table(frame, "frame")))
    key = uuid.uuid4().hex
    run = sessions.submit_send(USER, NOTEBOOK, FABRIC, data, "SENT", key=key, part=0, last=True, view=True)
    assert run.wait(60) and run.state == RunState.FINISHED, run.result
    sent = parse_sent(run.result.text)
    assert sent.rows == 3 and [name for name, _ in sent.schema] == ["ID", "REGION", "RATE", "PAID"]
    count = sessions.run(USER, NOTEBOOK, FABRIC, "int(SENT.filter(SENT['PAID']).count())")
    assert count.result.text.splitlines()[-1] == "2", "(the emulator may warn first)"
    back = sessions.fetch_table(USER, NOTEBOOK, FABRIC, "session.table('SENT').sort('RATE')", 10).table
    assert back["REGION"].tolist()[0] == "north" and pd.isna(back["REGION"][1])
    assert back["ID"].tolist()[:2] == [1, 2] and pd.isna(back["ID"][2])
