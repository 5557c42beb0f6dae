"""One suite, two backends: what the magics and the bridge kernel get from the server's API over
REST (``ServerBackend``) and from a session service in the kernel's own process
(``InProcessBackend``) must be the same, down to the errors."""

from __future__ import annotations

import time

import pandas as pd
import pytest

from prophecy_jupyter.client.in_process import InProcessBackend
from prophecy_jupyter.client.rest import ServerBackend
from prophecy_jupyter.errors import Invalid, NotFound
from prophecy_jupyter.results.model import ResultKind, RunState
from prophecy_jupyter.sql_parameters import SqlParameter
from prophecy_jupyter.vault.keys import new_key
from tests.conftest import open_services
from tests.servers.jupyter import start_jupyter
from tests.servers.kernels import execute

pytestmark = [pytest.mark.spark, pytest.mark.slow]

NOTEBOOK = "work/shared.ipynb"
TOKEN_OF_KERNEL = "from prophecy_jupyter.client import kernel_token\nprint(kernel_token.token())"


@pytest.fixture(scope="module", params=["in-process", "server"])
def backend(request, gateway, tmp_path_factory):
    """A backend over a fresh store holding fabric ``default/gw`` on the test gateway."""
    base = tmp_path_factory.mktemp(request.param)
    data, key = base / "data", new_key()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PROPHECY_JUPYTER_DATA_DIR", str(data))
        patch.setenv("PROPHECY_JUPYTER_KEY", key)
        open_services(data, gateway.url, gateway.token).close()
        if request.param == "in-process":
            backend = InProcessBackend()
            yield backend
            backend.close()
            return
        server = start_jupyter(base, data, key)
        kernel = server.client(server.start_kernel("token.ipynb"))
        try:
            token = execute(kernel, TOKEN_OF_KERNEL).stdout.strip()
            backend = ServerBackend(server.url, token)
            yield backend
            backend.close()
        finally:
            kernel.stop_channels()
            server.stop()


def finished(run):
    run.wait(60)
    assert run.state == RunState.FINISHED, run.result
    return run


def test_fabrics_are_listed_and_a_notebook_attached_alike(backend):
    rows = {row["ref"]: row for row in backend.fabrics()}
    assert set(rows) == {"local", "default/gw"}
    assert set(rows["default/gw"]) == {"ref", "kind", "environment", "endpoint"}
    assert backend.attach(NOTEBOOK, "gw") == rows["default/gw"]
    assert backend.attachment(NOTEBOOK) == "default/gw"


def test_code_tables_and_sql_come_back_as_the_same_typed_results(backend):
    notes = []
    run = finished(backend.run(NOTEBOOK, "default/gw", "spark.range(6).count()", "pyspark", notes.append))
    assert (run.result.kind, run.result.text) == (ResultKind.TEXT, "6")
    table = finished(
        backend.table(NOTEBOOK, "default/gw", "spark.range(5).selectExpr('id', 'id * 2 as twice')", 3, print)
    )
    frame = backend.frame(table)
    assert (frame.truncated, frame.row_limit) == (True, 3)
    assert frame.table["twice"].tolist() == [0, 2, 4] and frame.table["twice"].dtype == "int64"
    parameters = [SqlParameter("day", "2024-02-29", "DATE")]
    query = "select :day as day, 1.5 as ratio"
    sql = backend.frame(finished(backend.sql_table(NOTEBOOK, "default/gw", query, parameters, 10, print)))
    assert sql.table["day"].tolist() == [pd.Timestamp("2024-02-29").date()]
    assert sql.row_limit == 10 and not sql.truncated


def test_a_failing_cell_brings_the_remote_error_back(backend):
    run = backend.run(NOTEBOOK, "default/gw", "1 / 0", "pyspark", print)
    run.wait(60)
    assert run.state == RunState.FAILED
    assert run.result.error_name == "ZeroDivisionError" and run.result.traceback


def test_a_cancelled_cell_ends_cancelled(backend):
    run = backend.run(NOTEBOOK, "default/gw", "import time\ntime.sleep(60)", "pyspark", print)
    time.sleep(0.5)
    backend.cancel(run)
    run.wait(30)
    assert run.state == RunState.CANCELLED


def test_bad_input_is_refused_with_the_same_error(backend):
    with pytest.raises(NotFound, match="nope"):
        backend.run(NOTEBOOK, "nope", "1", "pyspark", print)
    with pytest.raises(Invalid, match="confs: not a session setting"):
        backend.configure(NOTEBOOK, "default/gw", {"confs": {}}, print)


def test_session_settings_status_logs_and_completion(backend):
    messages = []
    assert backend.configure(
        NOTEBOOK, "default/gw", {"conf": {"spark.sql.shuffle.partitions": "7"}}, messages.append
    )
    assert any("Restarting the session" in m for m in messages)
    check = finished(
        backend.run(
            NOTEBOOK, "default/gw", "spark.conf.get('spark.sql.shuffle.partitions')", "pyspark", print
        )
    )
    assert check.result.text == "'7'"
    [session] = [s for s in backend.status(NOTEBOOK) if s["state"] != "ended"]
    assert (session["fabric"], session["state"], session["notebook"]) == ("default/gw", "idle", NOTEBOOK)
    assert any("ready" in line for line in backend.logs(NOTEBOOK, "default/gw", 5))
    assert "spark.range(" in backend.complete(NOTEBOOK, "default/gw", "spark.rang", 10)
    restarted = []
    backend.restart(NOTEBOOK, "default/gw", restarted.append)
    [after] = [s for s in backend.status(NOTEBOOK) if s["state"] != "ended"]
    assert after["remote_id"] != session["remote_id"]


def test_detach_closes_the_live_session_and_forgets_the_attachment(backend):
    assert not backend.has_session("work/never-run.ipynb", "default/gw")
    finished(backend.run(NOTEBOOK, "default/gw", "x = 1", "pyspark", print))
    assert backend.has_session(NOTEBOOK, "default/gw") and not backend.has_session(NOTEBOOK, "local")
    assert backend.detach(NOTEBOOK, "default/gw") == 1
    assert not backend.has_session(NOTEBOOK, "default/gw")
    assert backend.attachment(NOTEBOOK) is None
    assert [s for s in backend.status(NOTEBOOK) if s["state"] != "ended"] == []
    assert backend.complete(NOTEBOOK, "default/gw", "spark.rang", 10) == [], "no session, no completion"
    assert backend.detach(NOTEBOOK, "default/gw") == 0, "a session never started is not counted"
