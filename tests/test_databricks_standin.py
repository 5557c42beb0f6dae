"""databricks-sdk (written by Databricks) against the stand-in workspace: the proof that the
stand-in speaks the protocol our engine will rely on."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.core import Config
from databricks.sdk.errors import PermissionDenied, ResourceDoesNotExist
from databricks.sdk.service.compute import CommandStatus, ContextStatus, Language, ResultType, State

from tests.servers.databricks import StandInWorkspace

pytestmark = pytest.mark.spark


@pytest.fixture
def workspace(databricks_workspace):
    databricks_workspace.start_delay = 1.0
    return databricks_workspace


def client(workspace: StandInWorkspace, **auth) -> WorkspaceClient:
    auth = auth or {"token": workspace.pat}
    return WorkspaceClient(config=Config(host=workspace.url, retry_timeout_seconds=5, **auth))


def wait_command(w: WorkspaceClient, cluster: str, context: str, command: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while True:
        status = w.command_execution.command_status(
            cluster_id=cluster, context_id=context, command_id=command
        )
        if status.status in (CommandStatus.FINISHED, CommandStatus.CANCELLED, CommandStatus.ERROR):
            return status
        assert time.monotonic() < deadline, status
        time.sleep(0.05)


def open_context(w: WorkspaceClient, cluster: str, language: Language) -> str:
    context = w.command_execution.create(cluster_id=cluster, language=language).response.id
    deadline = time.monotonic() + 120
    while (
        w.command_execution.context_status(cluster_id=cluster, context_id=context).status
        != ContextStatus.RUNNING
    ):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    return context


def run(w, cluster, context, code, language=Language.PYTHON):
    command = w.command_execution.execute(
        cluster_id=cluster, context_id=context, language=language, command=code
    )
    return wait_command(w, cluster, context, command.response.id)


def test_python_and_sql_contexts_keep_state_and_report_results(workspace):
    cluster = workspace.add_cluster()
    w = client(workspace)
    context = open_context(w, cluster, Language.PYTHON)
    assert run(w, cluster, context, "x = 41").status == CommandStatus.FINISHED
    answer = run(w, cluster, context, "x + 1")
    assert answer.results.result_type == ResultType.TEXT and answer.results.data.strip() == "42"
    failed = run(w, cluster, context, "undefined_name")
    assert failed.status == CommandStatus.FINISHED, "a cell that raises is not an API failure"
    assert failed.results.result_type == ResultType.ERROR and "NameError" in failed.results.summary
    assert "undefined_name" in failed.results.cause
    sql = open_context(w, cluster, Language.SQL)
    table = run(w, cluster, sql, "SELECT 1 AS one, 'a' AS letter", Language.SQL)
    assert table.results.result_type == ResultType.TABLE and table.results.data == [[1, "a"]]
    assert [c["name"] for c in table.results.schema] == ["one", "letter"]
    w.command_execution.destroy(cluster_id=cluster, context_id=context)
    with pytest.raises(Exception, match="ContextNotFound"):
        w.command_execution.context_status(cluster_id=cluster, context_id=context)


def test_cancel_interrupts_a_running_command(workspace):
    cluster = workspace.add_cluster()
    w = client(workspace)
    context = open_context(w, cluster, Language.PYTHON)
    command = w.command_execution.execute(
        cluster_id=cluster,
        context_id=context,
        language=Language.PYTHON,
        command="import time\ntime.sleep(60)",
    ).response.id
    time.sleep(1.0)
    started = time.monotonic()
    w.command_execution.cancel(cluster_id=cluster, context_id=context, command_id=command)
    assert wait_command(w, cluster, context, command, timeout=30).status == CommandStatus.CANCELLED
    assert time.monotonic() - started < 20
    assert run(w, cluster, context, "1 + 1").results.data.strip() == "2"


def test_clusters_start_from_terminated_and_contexts_need_a_running_cluster(workspace):
    cluster = workspace.add_cluster("nightly", state="TERMINATED")
    w = client(workspace)
    assert w.clusters.get(cluster).state == State.TERMINATED
    assert cluster in [c.cluster_id for c in w.clusters.list()]
    with pytest.raises(TimeoutError):  # the SDK retries ClusterNotReadyException until its timeout
        w.command_execution.create(cluster_id=cluster, language=Language.PYTHON)
    assert sum(r["path"] == "/api/1.2/contexts/create" for r in workspace.requests) >= 2
    w.clusters.start(cluster_id=cluster)
    assert w.clusters.get(cluster).state == State.PENDING
    with pytest.raises(Exception, match=r"unexpected state PENDING"):
        w.clusters.start(cluster_id=cluster)
    time.sleep(workspace.start_delay + 0.1)
    assert w.clusters.get(cluster).state == State.RUNNING
    with pytest.raises(ResourceDoesNotExist, match="does not exist"):  # the SDK's mapping of our 400
        w.clusters.get("0000-missing")


def test_tokens_oauth_and_refusals(workspace):
    cluster = workspace.add_cluster()
    with pytest.raises(PermissionDenied, match="Invalid access token"):
        client(workspace, token="dapi-wrong").clusters.get(cluster)
    workspace.token_lifetime = 42  # the SDK refreshes a token in its last 40 s
    before = len(workspace.requests)
    oauth = client(workspace, client_id=workspace.client_id, client_secret=workspace.client_secret)
    used: set[str] = set()
    for _ in range(10):
        assert oauth.clusters.get(cluster).state == State.RUNNING
        used = {r["authorization"] for r in workspace.requests[before:] if r["path"].startswith("/api/")}
        if len(used) >= 2:
            break
        time.sleep(1)
    assert len(used) >= 2, "a token about to expire is refreshed"
    assert all(u.startswith("Bearer oauth-") for u in used)


def test_sql_statements_with_parameters_arrow_chunks_inline_rows_and_cancel(workspace):
    import pyarrow as pa
    import requests
    from databricks.sdk.service.sql import (
        Disposition,
        Format,
        StatementParameterListItem,
        StatementState,
    )

    warehouse = workspace.add_warehouse()
    workspace.rows_per_chunk = 4
    w = client(workspace)
    assert w.warehouses.get(warehouse).name == "serverless"
    answer = w.statement_execution.execute_statement(
        warehouse_id=warehouse,
        statement="SELECT id, CAST(id AS DECIMAL(5,2)) AS price, :who AS who FROM range(:n)",
        parameters=[
            StatementParameterListItem(name="n", value="10", type="INT"),
            StatementParameterListItem(name="who", value="ana"),
        ],
        disposition=Disposition.EXTERNAL_LINKS,
        format=Format.ARROW_STREAM,
        wait_timeout="30s",
    )
    assert answer.status.state == StatementState.SUCCEEDED
    manifest = answer.manifest
    assert manifest.total_chunk_count == 3 and manifest.total_row_count == 10
    assert [(c.name, c.type_name.value) for c in manifest.schema.columns] == [
        ("id", "LONG"),
        ("price", "DECIMAL"),
        ("who", "STRING"),
    ]
    links = [answer.result.external_links[0]]
    while links[-1].next_chunk_index is not None:
        chunk = w.statement_execution.get_statement_result_chunk_n(
            answer.statement_id, links[-1].next_chunk_index
        )
        links.extend(chunk.external_links)
    refused = requests.get(
        links[0].external_link, headers={"Authorization": f"Bearer {workspace.pat}"}, timeout=10
    )
    assert refused.status_code == 400, "presigned links refuse the workspace's Authorization header"
    tables = [
        pa.ipc.open_stream(requests.get(link.external_link, timeout=10).content).read_all() for link in links
    ]
    rows = pa.concat_tables(tables).to_pylist()
    assert [r["id"] for r in rows] == list(range(10)) and rows[3]["who"] == "ana"
    assert str(rows[3]["price"]) == "3.00"

    inline = w.statement_execution.execute_statement(
        warehouse_id=warehouse, statement="SELECT 1 AS one, NULL AS nothing", wait_timeout="10s"
    )
    assert inline.result.data_array == [["1", None]]

    slow = w.statement_execution.execute_statement(
        warehouse_id=warehouse,
        statement="SELECT count(*) FROM range(1000000000) a CROSS JOIN range(1000) b",
        wait_timeout="0s",
        disposition=Disposition.EXTERNAL_LINKS,
        format=Format.ARROW_STREAM,
    )
    assert slow.status.state in (StatementState.PENDING, StatementState.RUNNING)
    w.statement_execution.cancel_execution(slow.statement_id)
    assert w.statement_execution.get_statement(slow.statement_id).status.state == StatementState.CANCELED
    with pytest.raises(Exception, match="does not exist"):
        w.statement_execution.execute_statement(warehouse_id="nope", statement="SELECT 1")


def test_jobs_runs_and_workspace_import(workspace):
    import base64

    from databricks.sdk.service import jobs
    from databricks.sdk.service.workspace import ImportFormat, Language

    w = client(workspace)
    cluster = workspace.add_cluster()
    workspace.run_duration = 1.0

    def task(key: str) -> jobs.Task:
        return jobs.Task(
            task_key=key,
            existing_cluster_id=cluster,
            spark_python_task=jobs.SparkPythonTask(python_file=f"pipelines/{key}/pipeline.py"),
        )

    created = w.jobs.create(
        name="nightly-orders",
        tasks=[task("orders")],
        schedule=jobs.CronSchedule(quartz_cron_expression="0 0 9 ? * MON-FRI", timezone_id="Europe/Berlin"),
        max_concurrent_runs=1,
    )
    job = w.jobs.get(created.job_id)
    assert job.settings.name == "nightly-orders" and job.settings.schedule.timezone_id == "Europe/Berlin"
    w.jobs.update(created.job_id, new_settings=jobs.JobSettings(tasks=[task("extra")]))
    assert {t.task_key for t in w.jobs.get(created.job_id).settings.tasks} == {"orders", "extra"}
    w.jobs.reset(created.job_id, new_settings=jobs.JobSettings(name="nightly-orders", tasks=[task("orders")]))
    big = w.jobs.create(name="wide", tasks=[task(f"t{i}") for i in range(130)])
    assert len(w.jobs.get(big.job_id).settings.tasks) == 130, "the SDK follows the 2.2 task pages"
    assert [j.job_id for j in w.jobs.list(name="nightly-orders")] == [created.job_id]

    run = w.jobs.run_now_and_wait(created.job_id, idempotency_token="once", timeout=timedelta(seconds=60))
    assert run.state.result_state == jobs.RunResultState.SUCCESS
    assert w.jobs.run_now(created.job_id, idempotency_token="once").run_id == run.run_id
    output = w.jobs.get_run_output(run.tasks[0].run_id)
    assert output.logs.startswith("ran orders")
    two = w.jobs.submit(run_name="adhoc", tasks=[task("a"), task("b")]).run_id
    with pytest.raises(Exception, match="multiple tasks"):
        w.jobs.get_run_output(two)
    w.jobs.cancel_run(two)
    assert w.jobs.get_run(two).state.result_state == jobs.RunResultState.CANCELED
    w.jobs.delete(created.job_id)
    with pytest.raises(Exception, match="does not exist"):
        w.jobs.get(created.job_id)

    source = base64.b64encode(b"# Databricks notebook source\nprint(1)\n").decode()
    w.workspace.import_("/Shared/etl", content=source, format=ImportFormat.SOURCE, language=Language.PYTHON)
    with pytest.raises(Exception, match="already exists"):
        w.workspace.import_(
            "/Shared/etl", content=source, format=ImportFormat.SOURCE, language=Language.PYTHON
        )
    w.workspace.upload("/Shared/etl", b"print(2)\n", format=ImportFormat.AUTO, overwrite=True)  # multipart
    assert workspace.files["/Shared/etl"]["content"] == b"print(2)\n"
    assert w.workspace.get_status("/Shared/etl").path == "/Shared/etl"
