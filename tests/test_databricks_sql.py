"""The databricks-sql fabric kind: %%sql on a SQL warehouse through the Statement Execution API,
Arrow chunks from presigned links, typed pandas, named parameters and cancel (stand-in workspace).
Named parameters work the same on Spark fabrics."""

from __future__ import annotations

import decimal
import time

import pandas as pd
import pytest

from prophecy_jupyter.errors import Invalid
from prophecy_jupyter.results.model import RunState
from prophecy_jupyter.results.sending import arrow_table, encoded_parts
from prophecy_jupyter.services.runtime import build_services
from prophecy_jupyter.sql_parameters import SqlParameter
from tests.conftest import USER

pytestmark = pytest.mark.spark

TYPED_QUERY = """
SELECT id,
       CAST(id AS INT) AS n,
       IF(id % 3 = 0, NULL, id) AS maybe,
       CAST(id / 4 AS DECIMAL(10,2)) AS price,
       :who AS who,
       DATE'2026-11-21' + CAST(id AS INT) AS day,
       TIMESTAMP'2026-11-21 10:00:00' AS at
FROM range(:rows)
"""


@pytest.fixture
def workspace(databricks_workspace):
    databricks_workspace.rows_per_chunk = 4
    return databricks_workspace


@pytest.fixture
def warehouse(workspace, data_dir):
    built = build_services(data_dir, bootstrap_user="ana")
    spec = {
        "name": "bi",
        "kind": "databricks-sql",
        "settings": {"host": workspace.url, "warehouse_id": workspace.add_warehouse()},
    }
    fabric = built.fabrics.create("ana", "default", spec)
    built.credentials.set("ana", fabric, workspace.pat)
    yield built
    built.close()


PARAMETERS = [SqlParameter("who", "ana"), SqlParameter("rows", "10", "INT")]


def test_sql_on_a_warehouse_comes_back_as_typed_pandas_from_arrow_chunks(workspace, warehouse):
    result = warehouse.sessions.fetch_sql("ana", "bi.ipynb", "bi", TYPED_QUERY, 1000, PARAMETERS)
    frame = result.table
    assert result.ok and len(frame) == 10 and not result.truncated
    assert {c: str(t) for c, t in frame.dtypes.items()} == {
        "id": "int64",
        "n": "int32",
        "maybe": "Int64",
        "price": "decimal128(10, 2)[pyarrow]",
        "who": "string",
        "day": "date32[day][pyarrow]",
        "at": "datetime64[us, UTC]",
    }
    assert frame["maybe"].isna().tolist() == [i % 3 == 0 for i in range(10)]
    assert frame["price"][5] == decimal.Decimal("1.25") and set(frame["who"]) == {"ana"}
    downloads = [r for r in workspace.requests if r["path"].startswith("/presigned/")]
    assert len(downloads) == 3, "ten rows in chunks of four"
    assert all(r["authorization"] is None for r in downloads), "presigned links get no workspace token"
    statement = next(r for r in workspace.requests if r["path"] == "/api/2.0/sql/statements")
    assert statement["body"]["parameters"] == [p.to_json() for p in PARAMETERS]
    assert statement["body"]["wait_timeout"] == "0s", "our own poll loop, not the server's wait"

    capped = warehouse.sessions.fetch_sql("ana", "bi.ipynb", "bi", "SELECT * FROM range(50)", 5)
    assert len(capped.table) == 5 and capped.truncated
    done = warehouse.sessions.fetch_sql(
        "ana", "bi.ipynb", "bi", "CREATE OR REPLACE TEMP VIEW v AS SELECT 1", 10
    )
    assert done.ok and len(done.table.columns) == 0


def test_errors_python_and_cancel_on_a_warehouse(workspace, warehouse):
    sessions = warehouse.sessions
    failed = sessions.fetch_sql("ana", "bi.ipynb", "bi", "SELECT * FROM no_such_table", 10)
    assert not failed.ok and "no_such_table" in failed.error_message
    python = sessions.run("ana", "bi.ipynb", "bi", "1 + 1")
    assert python.state == RunState.FAILED and "runs SQL only" in python.result.error_message
    table = next(encoded_parts(arrow_table(pd.DataFrame({"a": [1]}), "frame")))
    with pytest.raises(Invalid, match="runs SQL only: a table can be sent to a Spark or Snowflake fabric"):
        sessions.submit_send("ana", "bi.ipynb", "bi", table, "t", key="0" * 32, part=0, last=True)
    with pytest.raises(Invalid, match="not a INT"):
        sessions.fetch_sql("ana", "bi.ipynb", "bi", "SELECT :n", 10, [SqlParameter("n", "five", "INT")])

    slow = sessions.submit_sql(
        "ana", "bi.ipynb", "bi", "SELECT count(*) FROM range(1000000000) a CROSS JOIN range(1000) b", 10
    )
    deadline = time.monotonic() + 30
    while not any(
        r["path"] == "/api/2.0/sql/statements" and "CROSS" in r["body"].get("statement", "")
        for r in workspace.requests
    ):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    started = time.monotonic()
    sessions.cancel(slow)
    assert slow.wait(30) and slow.state == RunState.CANCELLED
    assert time.monotonic() - started < 20
    assert any(r["path"].endswith("/cancel") for r in workspace.requests)


def test_named_parameters_work_the_same_on_spark_fabrics(services):
    result = services.sessions.fetch_sql(USER, "nb", "gw", TYPED_QUERY, 1000, PARAMETERS)
    assert result.ok and len(result.table) == 10 and set(result.table["who"]) == {"ana"}
    assert str(result.table.dtypes["price"]) == "decimal128(10, 2)[pyarrow]"
