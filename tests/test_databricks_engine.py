"""Our Databricks engine against the stand-in workspace: contexts keep state, results are typed,
errors carry the remote traceback, bad tokens and stopped clusters say what to do."""

from __future__ import annotations

import os
import time

import pytest

from prophecy_jupyter.engines.base import (
    AuthenticationError,
    EngineError,
    RunState,
    SessionSpec,
    SessionState,
)
from prophecy_jupyter.engines.databricks import DatabricksConnection, DatabricksEngine, result_of
from prophecy_jupyter.results.model import ResultKind
from tests.servers.databricks import StandInWorkspace

FABRIC = "data-eng/dbx"


@pytest.fixture(autouse=True)
def hermetic_sdk(monkeypatch, tmp_path):
    for name in [n for n in os.environ if n.startswith("DATABRICKS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(tmp_path / "missing.cfg"))


@pytest.fixture
def workspace(gateway):
    ws = StandInWorkspace(gateway.url, gateway.token).start()
    yield ws
    ws.stop()


def engine_for(workspace: StandInWorkspace, cluster: str, secret: str | None = None) -> DatabricksEngine:
    connection = DatabricksConnection(host=workspace.url, cluster_id=cluster, retry_timeout=5)
    return DatabricksEngine(connection, secret or workspace.pat, FABRIC)


def ready(engine: DatabricksEngine, kind: str = "pyspark") -> str:
    session = engine.open_session(SessionSpec(kind=kind))
    deadline = time.monotonic() + 120
    while session.state == SessionState.STARTING:
        assert time.monotonic() < deadline
        time.sleep(0.1)
        session = engine.session(session.id)
    assert session.state == SessionState.IDLE, session
    return session.id


def run(engine: DatabricksEngine, session: str, code: str, kind: str = "pyspark"):
    status = engine.submit(session, code, kind, "run")
    deadline = time.monotonic() + 60
    while not status.done:
        assert time.monotonic() < deadline
        time.sleep(0.02)
        status = engine.poll(session, status.id)
    return status


@pytest.mark.spark
def test_cells_keep_state_and_results_are_typed(workspace):
    engine = engine_for(workspace, workspace.add_cluster())
    python = ready(engine)
    assert run(engine, python, "x = 41").state == RunState.FINISHED
    assert run(engine, python, "x + 1").result.text.strip() == "42"
    failed = run(engine, python, "def broken():\n    return undefined_name\nbroken()")
    assert failed.state == RunState.FAILED and failed.result.error_name == "NameError"
    assert "undefined_name" in failed.result.error_message and any(
        "broken" in line for line in failed.result.traceback
    )
    sql = ready(engine, "sql")
    table = run(
        engine, sql, "SELECT 1 AS one, 'a' AS letter, CAST(1.5 AS DECIMAL(3,1)) AS d, NULL AS nothing", "sql"
    )
    frame = table.result.table
    assert table.result.kind == ResultKind.TABLE and list(frame.columns) == ["one", "letter", "d", "nothing"]
    assert str(frame.dtypes["one"]) == "Int32" and str(frame.dtypes["letter"]) == "string"
    assert str(frame.dtypes["d"]).startswith("decimal128(3, 1)")
    engine.close_session(python)
    with pytest.raises(EngineError, match="gone"):
        engine.session(python)


@pytest.mark.spark
def test_a_bad_token_and_a_stopped_cluster_say_what_to_do(workspace):
    cluster = workspace.add_cluster()
    with pytest.raises(AuthenticationError, match=f"'{FABRIC}'.*credentials set {FABRIC}"):
        engine_for(workspace, cluster, secret="dapi-wrong").open_session(SessionSpec())
    stopped = engine_for(workspace, workspace.add_cluster("nightly", state="TERMINATED"))
    with pytest.raises(EngineError, match="TERMINATED; start it"):
        stopped.open_session(SessionSpec())


def test_text_html_images_and_errors_map_like_a_notebook():
    assert result_of({"resultType": "text", "data": "Out[3]: 42"}).text == "42"
    page = result_of({"resultType": "text", "data": "<div><table><tr><td>1</td></tr></table></div>"})
    assert page.kind == ResultKind.HTML and "<table>" in page.html
    png = "iVBORw0KGgo="
    assert result_of(
        {"resultType": "image", "fileName": f"data:image/png;base64,{png}"}
    ).image_png.startswith(b"\x89PNG")
    error = result_of(
        {
            "resultType": "error",
            "summary": '<span class="ansi-red-fg">KeyError</span>: &#39;foo&#39;',
            "cause": "\x1b[0;31mKeyError\x1b[0m: 'foo'\nline 2",
        }
    )
    assert (error.error_name, error.error_message, error.traceback) == (
        "KeyError",
        "'foo'",
        ["KeyError: 'foo'", "line 2"],
    )
    assert result_of(None).text == ""


@pytest.mark.spark
def test_a_databricks_fabric_runs_cells_through_the_session_service(workspace, data_dir):
    from prophecy_jupyter.services.runtime import build_services

    cluster = workspace.add_cluster()
    services = build_services(data_dir, bootstrap_user="ana")
    try:
        spec = {
            "name": "dbx",
            "kind": "databricks",
            "settings": {"host": workspace.url, "cluster_id": cluster},
        }
        fabric = services.fabrics.create("ana", "default", spec)
        services.credentials.set("ana", fabric.scope, workspace.pat)
        assert services.sessions.run("ana", "etl.ipynb", "dbx", "y = 6 * 7").state == RunState.FINISHED
        answer = services.sessions.run("ana", "etl.ipynb", "dbx", "y")
        assert answer.state == RunState.FINISHED and answer.result.text.strip() == "42"
        assert any(r["path"] == "/api/1.2/commands/execute" for r in workspace.requests)
    finally:
        services.close()
