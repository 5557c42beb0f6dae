"""Our Databricks engine against the stand-in workspace: contexts keep state, results are typed,
errors carry the remote traceback, bad tokens and stopped clusters say what to do."""

from __future__ import annotations

import time
import uuid

import pandas as pd
import pytest

from prophecy_jupyter.engines.base import SessionSpec, SessionState
from prophecy_jupyter.engines.databricks import DatabricksConnection, DatabricksEngine, result_of
from prophecy_jupyter.errors import AuthenticationError, EngineError
from prophecy_jupyter.results.frames import frame_from_payload
from prophecy_jupyter.results.model import ResultKind, RunState
from prophecy_jupyter.results.sending import arrow_table, encoded_parts, parse_sent
from tests.servers.databricks import StandInWorkspace

FABRIC = "data-eng/dbx"
FABRIC_REF = "default/dbx"


pytestmark = pytest.mark.usefixtures("hermetic_databricks")


@pytest.fixture
def workspace(databricks_workspace):
    return databricks_workspace


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
    frame = frame_from_payload(table.payload)
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
    broken = workspace.add_cluster("broken", state="ERROR")
    workspace.clusters[broken].state_message = "Driver is unresponsive"
    with pytest.raises(EngineError, match=r"in state ERROR \(Driver is unresponsive\); it cannot run cells"):
        engine_for(workspace, broken).open_session(SessionSpec())
    with pytest.raises(EngineError, match=r"Cluster 0000-gone does not exist\. Check the fabric.s settings"):
        engine_for(workspace, "0000-gone").open_session(SessionSpec())


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
        ("KeyError: 'foo'", "line 2"),
    )
    assert result_of(None).text == ""


@pytest.fixture
def dbx_services(workspace, data_dir):
    """Services with fabric ``default/dbx`` on a running stand-in cluster (ana's PAT set)."""
    from prophecy_jupyter.services.runtime import build_services
    from prophecy_jupyter.services.settings import ServiceSettings

    built = build_services(data_dir, settings=ServiceSettings(poll_failure_budget=20), bootstrap_user="ana")
    cluster = workspace.add_cluster()
    add_dbx_fabric(built, workspace, cluster)
    yield built
    built.close()


def add_dbx_fabric(built, workspace: StandInWorkspace, cluster: str, name: str = "dbx", **settings):
    spec = {
        "name": name,
        "kind": "databricks",
        "settings": {"host": workspace.url, "cluster_id": cluster, **settings},
    }
    fabric = built.fabrics.create("ana", "default", spec)
    if fabric.secret_needed:
        secret = workspace.client_secret if settings.get("auth") == "oauth-m2m" else workspace.pat
        built.credentials.set("ana", fabric, secret)
    return fabric


def executions(workspace: StandInWorkspace) -> int:
    return sum(r["path"] == "/api/1.2/commands/execute" for r in workspace.requests)


@pytest.mark.spark
def test_a_databricks_fabric_runs_cells_through_the_session_service(workspace, dbx_services):
    sessions = dbx_services.sessions
    assert sessions.run("ana", "etl.ipynb", "dbx", "y = 6 * 7").state == RunState.FINISHED
    answer = sessions.run("ana", "etl.ipynb", "dbx", "y")
    assert answer.state == RunState.FINISHED and answer.result.text.strip() == "42"
    assert executions(workspace) == 2
    context = next(iter(workspace.contexts))
    assert sessions.close("ana", "etl.ipynb", "dbx") == 1
    assert context not in workspace.contexts, "detaching destroys the execution context"


@pytest.mark.spark
def test_a_local_table_is_sent_to_a_databricks_cluster_as_commands(workspace, dbx_services):
    frame = pd.DataFrame({"n": range(5000), "label": [f"n{i}" for i in range(5000)]})
    key = uuid.uuid4().hex
    [data] = list(encoded_parts(arrow_table(frame, "frame")))
    sent = dbx_services.sessions.submit_send(
        "ana", "etl.ipynb", "dbx", data, "sent", key=key, part=0, last=True, view=True
    )
    assert sent.wait(120) and sent.state == RunState.FINISHED, sent.result
    assert parse_sent(sent.result.text).schema == [("n", "bigint"), ("label", "string")]
    total = dbx_services.sessions.run(
        "ana", "etl.ipynb", "dbx", "spark.sql('SELECT sum(n) FROM sent').first()[0]"
    )
    assert total.result.text.strip() == str(sum(range(5000)))


@pytest.mark.spark
def test_a_terminated_cluster_starts_on_request_and_cells_wait_for_it(workspace, dbx_services):
    workspace.start_delay = 2.0
    cluster = workspace.add_cluster("nightly", state="TERMINATED")
    add_dbx_fabric(dbx_services, workspace, cluster, name="nightly")
    sessions, clusters = dbx_services.sessions, dbx_services.clusters
    with pytest.raises(EngineError, match="TERMINATED; start it with `%fabric start`"):
        sessions.run("ana", "etl.ipynb", "nightly", "1")
    assert clusters.state("ana", "nightly")["state"] == "TERMINATED"
    started = clusters.start("ana", "nightly")
    assert (started["state"], started["message"]) == ("PENDING", "Starting Spark")
    assert clusters.start("ana", "nightly")["state"] == "PENDING", "a second start is harmless"
    heard: list[str] = []
    answer = sessions.run("ana", "etl.ipynb", "nightly", "'up'", notify=heard.append)
    assert answer.state == RunState.FINISHED and answer.result.text.strip() == "'up'"
    assert any("is PENDING (Starting Spark); waiting" in h for h in heard), heard
    assert heard[-1] == "Cluster nightly is running."
    listed = {c["name"]: c["state"] for c in clusters.list("ana", "nightly")}
    assert listed == {"shared": "RUNNING", "nightly": "RUNNING"}


@pytest.mark.spark
def test_an_evicted_context_or_a_restarted_cluster_is_replaced_and_the_user_told(workspace, dbx_services):
    sessions = dbx_services.sessions
    assert sessions.run("ana", "etl.ipynb", "dbx", "kept = 1").state == RunState.FINISHED
    workspace.evict(next(iter(workspace.contexts)))
    heard: list[str] = []
    answer = sessions.run("ana", "etl.ipynb", "dbx", "'still here'", notify=heard.append)
    assert answer.state == RunState.FINISHED and answer.result.text.strip() == "'still here'"
    # Told either with the run (the submit found the context gone) or before it (a health check
    # of the earlier run noticed first and the new session started with a notice).
    told = [*answer.notes, *heard]
    assert told and all("earlier cells" in m for m in told[:1]), told
    if answer.notes:
        assert answer.notes == (
            f"The execution context on fabric '{FABRIC_REF}' is gone (evicted, or the cluster restarted); "
            "variables from earlier cells are lost. This cell runs in a new one.",
        )
    lost = sessions.run("ana", "etl.ipynb", "dbx", "kept")
    assert lost.state == RunState.FAILED and lost.result.error_name == "NameError"

    workspace.start_delay = 1.0
    workspace.restart_cluster(next(iter(workspace.clusters)))
    heard = []
    answer = sessions.run("ana", "etl.ipynb", "dbx", "'after restart'", notify=heard.append)
    assert answer.state == RunState.FINISHED and answer.result.text.strip() == "'after restart'"
    told = [*answer.notes, *heard]
    assert any("earlier cells" in m for m in told) and any(
        "RESTARTING" in m or "PENDING" in m for m in told
    ), told


@pytest.mark.spark
def test_faults_are_ridden_out_and_nothing_runs_twice(workspace, dbx_services):
    sessions = dbx_services.sessions
    assert sessions.run("ana", "etl.ipynb", "dbx", "n = 0").state == RunState.FINISHED
    # Throttled: the workspace refused the command, so it is sent again after Retry-After.
    workspace.fail_next(
        "/api/1.2/commands/execute",
        status=429,
        body={"error_code": "TOO_MANY_REQUESTS", "message": "Too many requests"},
        headers={"Retry-After": "1"},
    )
    before = executions(workspace)
    assert sessions.run("ana", "etl.ipynb", "dbx", "n += 1").state == RunState.FINISHED
    assert executions(workspace) - before == 2
    # The answer is lost after the workspace took the command: reported, never resent.
    workspace.fail_next("/api/1.2/commands/execute", drop=True, handled=True)
    lost = sessions.run("ana", "etl.ipynb", "dbx", "n += 1")
    assert lost.state == RunState.FAILED and "was not sent again" in lost.result.error_message
    # Polls ride out 503s (the SDK), a plain 500, a dropped connection and a slow answer.
    workspace.fail_next(
        "/api/1.2/commands/status",
        status=503,
        body={"error_code": "TEMPORARILY_UNAVAILABLE", "message": "try later"},
    )
    workspace.fail_next("/api/1.2/commands/status", status=500, body={"error": "internal"})
    workspace.fail_next("/api/1.2/commands/status", drop=True)
    workspace.fail_next("/api/1.2/commands/status", delay=1.5)
    time.sleep(0.5)  # let the dropped command finish on the cluster
    counted = sessions.run("ana", "etl.ipynb", "dbx", "n")
    assert counted.state == RunState.FINISHED and counted.result.text.strip() == "2", "each command ran once"
    assert not workspace.faults, "every fault was met"


@pytest.mark.spark
def test_oauth_tokens_are_refreshed_during_a_session(workspace, data_dir):
    from prophecy_jupyter.services.runtime import build_services

    # The SDK takes a fresh token 40 s before expiry: with 42 s tokens, one every ~2 s.
    ws = workspace
    ws.token_lifetime = 42
    built = build_services(data_dir, bootstrap_user="ana")
    try:
        add_dbx_fabric(built, ws, ws.add_cluster(), auth="oauth-m2m", client_id=ws.client_id)
        deadline = time.monotonic() + 5
        runs = 0
        while time.monotonic() < deadline:
            assert built.sessions.run("ana", "etl.ipynb", "dbx", f"{runs} + 1").state == RunState.FINISHED
            runs += 1
        tokens = {r["authorization"] for r in ws.requests if r["path"].startswith("/api/")}
        assert sum(r["path"] == "/oidc/v1/token" for r in ws.requests) >= 2 and len(tokens) >= 2
        assert not ws.pats & {t.removeprefix("Bearer ") for t in tokens}
    finally:
        built.close()


@pytest.mark.spark
def test_a_databrickscfg_profile_is_used(workspace, data_dir, tmp_path, monkeypatch):
    from prophecy_jupyter.services.runtime import build_services

    config = tmp_path / "databrickscfg"
    config.write_text(f"[dev]\nhost = {workspace.url}\ntoken = {workspace.pat}\n")
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(config))
    built = build_services(data_dir, bootstrap_user="ana")
    try:
        add_dbx_fabric(built, workspace, workspace.add_cluster(), auth="profile", profile="dev")
        assert built.sessions.run("ana", "nb", "dbx", "'profile'").result.text.strip() == "'profile'"
        add_dbx_fabric(
            built, workspace, workspace.add_cluster(), name="other", auth="profile", profile="nope"
        )
        with pytest.raises(EngineError, match="nope"):
            built.sessions.run("ana", "nb", "other", "1")
    finally:
        built.close()


def test_connection_checks_of_databricks_fabrics(workspace, dbx_services):
    from prophecy_jupyter.services.connection_test import check_fabric

    built = dbx_services
    ok = check_fabric(built.fabrics, "ana", "dbx")
    assert ok.ok and ok.steps[-2:] == [
        "auth: pat accepted",
        f"cluster {next(iter(workspace.clusters))}: RUNNING",
    ]
    missing = add_dbx_fabric(built, workspace, "0000-missing", name="missing")
    report = check_fabric(built.fabrics, "ana", missing.ref)
    assert (report.ok, report.stage) == (False, "resource") and "0000-missing" in report.message
    built.credentials.set("ana", built.fabrics.get("ana", "dbx"), "dapi-wrong")
    refused = check_fabric(built.fabrics, "ana", "dbx")
    assert (refused.ok, refused.stage) == (False, "auth") and "Invalid access token" in refused.message
    cluster = next(iter(workspace.clusters))
    oauth = add_dbx_fabric(
        built, workspace, cluster, name="m2m", auth="oauth-m2m", client_id=workspace.client_id
    )
    assert check_fabric(built.fabrics, "ana", oauth.ref).ok
    built.credentials.set("ana", oauth, "not-the-secret")
    wrong = check_fabric(built.fabrics, "ana", oauth.ref)
    assert not wrong.ok and wrong.stage in ("auth", "credentials"), wrong
    spec = {
        "name": "bi",
        "kind": "databricks-sql",
        "settings": {"host": workspace.url, "warehouse_id": workspace.add_warehouse()},
    }
    warehouse = built.fabrics.create("ana", "default", spec)
    built.credentials.set("ana", warehouse, workspace.pat)
    assert check_fabric(built.fabrics, "ana", warehouse.ref).message.endswith("is RUNNING.")
