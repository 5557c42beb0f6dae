"""Jobs on Databricks fabrics: a notebook's committed pipeline becomes a Databricks job (Jobs API
on databricks-sdk) in the stand-in workspace, whose runs really run the imported code on PySpark
(batches of our gateway). databricks-sdk, written by Databricks, reads back every job we create.
Deploying twice keeps one job; runs succeed and fail with the error shown; a run is cancelled;
the schedule is paused and resumed; the job is removed; and no secret is in anything generated.
The same flow from the command line, and the job as a Databricks Asset Bundle."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pyarrow.parquet as pq
import pytest
import yaml

from prophecy_jupyter.errors import Invalid, NotFound
from prophecy_jupyter.schedulers.databricks_jobs import quartz
from prophecy_jupyter.services.runtime import build_services
from tests.conftest import USER
from tests.servers.git_http import served_project
from tests.test_snowflake_sessions import code_cell

pytestmark = [pytest.mark.spark, pytest.mark.slow]
TOKEN = "ghp_" + "D4tb" * 9
PIPELINE_CELL = """%%spark
import time
assert rows >= 0, f"rows must not be negative, not {rows}"
time.sleep(seconds)
spark.range(rows).write.mode("overwrite").parquet(out)"""


@pytest.mark.parametrize(
    ("unix", "expected"),
    [
        ("0 2 * * *", "0 0 2 * * ?"),
        ("30 2 * * 1-5", "0 30 2 ? * 2-6"),
        ("0 9 * * 0,6", "0 0 9 ? * 1,7"),
        ("0 9 * * 7", "0 0 9 ? * 1"),
        ("0 9 * * MON-FRI", "0 0 9 ? * MON-FRI"),
        ("*/15 * 1 * *", "0 */15 * 1 * ?"),
        ("0 0 * * */2", "0 0 0 ? * 1-7/2"),
        ("0 6 1 1,7 *", "0 0 6 1 1,7 ?"),
    ],
)
def test_a_unix_cron_becomes_the_quartz_cron_databricks_takes(unix, expected):
    assert quartz(unix) == expected


def test_a_cron_on_both_a_month_day_and_a_week_day_is_refused_by_name():
    with pytest.raises(Invalid, match="restricts both the day of the month and the day of the week") as both:
        quartz("0 2 1 * 1")
    assert both.value.field == "schedule.cron"


@pytest.fixture
def project(tmp_path, data_dir, databricks_workspace):
    built = build_services(data_dir, bootstrap_user=USER)
    cluster = databricks_workspace.add_cluster("jobs")
    settings = {"host": databricks_workspace.url, "cluster_id": cluster}
    fabric = built.fabrics.create(
        USER, "default", {"name": "dbx", "kind": "databricks", "settings": settings}
    )
    built.fabrics.set_secret(USER, fabric.id, databricks_workspace.pat)
    with served_project(built, tmp_path / "served", "lake", TOKEN, USER):
        cells = [
            code_cell("rows = 5\nseconds = 0\nout = '/tmp/nowhere'", ("parameters",)),
            code_cell(PIPELINE_CELL),
        ]
        notebook = {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
        built.projects.generate(
            USER, "lake", notebook, "orders.ipynb", None, built.fabrics.get(USER, "default/dbx")
        )
        built.projects.commit(USER, "lake", "Add orders")
        yield built
    built.close()


def _sdk(workspace):
    from databricks.sdk import WorkspaceClient

    return WorkspaceClient(host=workspace.url, token=workspace.pat)


def test_a_job_is_deployed_once_run_watched_paused_and_removed_on_databricks(
    project, databricks_workspace, tmp_path
):
    out = tmp_path / "orders.parquet"
    spec = {
        "name": "nightly",
        "pipelines": ["orders"],
        "fabric": "dbx",
        "schedule": {"cron": "30 2 * * 1-5", "timezone": "Europe/Berlin"},
        "parameters": {"rows": "7", "out": str(out)},
        "retries": 1,
        "timeout_minutes": 30,
        "emails": ["data@example.com"],
    }
    project.jobs.create(USER, "lake", spec)

    exported, changed, target = project.jobs.export(USER, "lake", "nightly", "bundle")
    assert target == "bundle" and changed == ["databricks.yml", "resources/nightly.job.yml"]
    with pytest.raises(Invalid, match="whose scheduler takes bundle, not airflow"):
        project.jobs.export(USER, "lake", "nightly", "airflow")
    bundle = yaml.safe_load(exported.files["databricks.yml"])
    assert bundle["include"] == ["resources/*.yml"]
    assert bundle["targets"] == {
        "default-dbx": {"default": True, "workspace": {"host": databricks_workspace.url}}
    }
    resource = yaml.safe_load(exported.files["resources/nightly.job.yml"])["resources"]["jobs"]["nightly"]
    assert resource["tasks"][0]["spark_python_task"] == {
        "python_file": "../pipelines/orders/pipeline.py",
        "parameters": ["--rows", "7", "--out", str(out)],
        "source": "WORKSPACE",
    }
    assert exported.files == project.jobs.export(USER, "lake", "nightly")[0].files, "the same bytes"

    first = project.jobs.deploy(USER, "lake", "nightly")
    assert first.startswith("Deployed job nightly to default/dbx: created Databricks job "), first
    job_id = int(first.rsplit(" ", 1)[1].rstrip("."))
    again = project.jobs.deploy(USER, "lake", "nightly")
    assert again == f"Deployed job nightly to default/dbx: updated Databricks job {job_id} in place."
    assert list(databricks_workspace.jobs) == [job_id], "deploying twice keeps one job"

    sdk = _sdk(databricks_workspace)
    assert [found.job_id for found in sdk.jobs.list()] == [job_id]
    settings = sdk.jobs.get(job_id).settings
    assert settings.schedule.quartz_cron_expression == "0 30 2 ? * 2-6"
    assert settings.schedule.timezone_id == "Europe/Berlin"
    assert settings.schedule.pause_status.value == "UNPAUSED"
    (task,) = settings.tasks
    python_file = "/Shared/prophecy/default/lake/pipelines/orders/pipeline.py"
    assert task.spark_python_task.python_file == python_file
    assert task.spark_python_task.parameters == ["--rows", "7", "--out", str(out)]
    assert task.existing_cluster_id == project.fabrics.get(USER, "default/dbx").settings["cluster_id"]
    assert task.max_retries == 1 and settings.timeout_seconds == 1800 and settings.max_concurrent_runs == 1
    assert settings.email_notifications.on_failure == ["data@example.com"]
    assert settings.tags == {"prophecy-project": "default/lake", "prophecy-job": "nightly"}
    committed = project.projects.pipeline_files(USER, "lake", "orders")["pipelines/orders/pipeline.py"]
    assert databricks_workspace.files[python_file]["content"] == committed, "the committed code is imported"
    assert sdk.workspace.get_status(python_file).object_type.value == "FILE"

    run_id = project.jobs.run_now(USER, "lake", "nightly")
    run = project.jobs.wait_for_run(USER, "lake", "nightly", run_id, timeout=300, poll=0.5)
    assert (run.state, run.error) == ("SUCCESS", None), run
    assert run.started <= run.ended and run.link.endswith(f"/#job/{job_id}/run/{run_id}")
    assert pq.read_table(out).num_rows == 7, "the job ran the committed pipeline with its values"
    read_back = sdk.jobs.get_run(int(run_id))
    assert read_back.state.result_state.value == "SUCCESS", "the SDK reads the run the same way"

    project.jobs.create(USER, "lake", {**spec, "name": "broken", "parameters": {"rows": "-1"}})
    project.jobs.deploy(USER, "lake", "broken")
    broken = project.jobs.run_now(USER, "lake", "broken")
    failed = project.jobs.wait_for_run(USER, "lake", "broken", broken, timeout=300, poll=0.5)
    assert failed.state == "FAILED" and "rows must not be negative, not -1" in failed.error, failed
    assert failed.error.startswith("orders: "), "the task that failed is named"

    project.jobs.create(USER, "lake", {**spec, "name": "slow", "parameters": {"seconds": "120"}})
    project.jobs.deploy(USER, "lake", "slow")
    slow = project.jobs.run_now(USER, "lake", "slow")
    with pytest.raises(Invalid, match=f"Run {broken} of job slow is not running"):
        project.jobs.cancel(USER, "lake", "slow", broken)
    assert project.jobs.cancel(USER, "lake", "slow") == [slow]
    cancelled = project.jobs.wait_for_run(USER, "lake", "slow", slow, timeout=120, poll=0.5)
    assert cancelled.state == "CANCELED", cancelled
    assert project.jobs.cancel(USER, "lake", "slow") == [], "nothing left to cancel"

    assert project.jobs.pause(USER, "lake", "nightly").startswith("Paused job nightly")
    assert sdk.jobs.get(job_id).settings.schedule.pause_status.value == "PAUSED"
    resumed = project.jobs.resume(USER, "lake", "nightly")
    assert resumed.startswith("Resumed job nightly: next run ") and (
        "+01:00" in resumed or "+02:00" in resumed
    )
    assert sdk.jobs.get(job_id).settings.schedule.pause_status.value == "UNPAUSED"
    assert [r.run_id for r in project.jobs.runs(USER, "lake", "nightly")] == [run_id]

    generated = [
        *exported.files.values(),
        json.dumps({k: v["settings"] for k, v in databricks_workspace.jobs.items()}).encode(),
    ]
    for content in generated:
        assert databricks_workspace.pat.encode() not in content and TOKEN.encode() not in content

    removed, said = project.jobs.delete(USER, "lake", "nightly", remote=True)
    assert removed == ["jobs/nightly.yaml"] and said == "Removed job nightly from default/dbx."
    assert job_id not in databricks_workspace.jobs
    with pytest.raises(NotFound, match="no job nightly"):
        project.jobs.runs(USER, "lake", "nightly")
    with pytest.raises(Invalid, match="Job nightly is not deployed to default/dbx") as gone:
        project.jobs.create(USER, "lake", spec)
        project.jobs.run_now(USER, "lake", "nightly")
    assert gone.value.field == "job"


def test_the_job_command_line_deploys_runs_and_follows_a_databricks_job(
    project, databricks_workspace, tmp_path
):
    """``jupyter prophecy``: job create, project commit and push to the real Git server, job deploy,
    run --wait (SUCCESS, exit 0; FAILED, exit 1), runs, pause, resume, delete --remote, against the
    stand-in workspace."""
    out = tmp_path / "cli.parquet"
    jupyter = os.path.join(os.path.dirname(sys.executable), "jupyter")

    def cli(*args: str) -> subprocess.CompletedProcess:
        command = [jupyter, "prophecy", "job", *args, "--project", "lake"]
        return subprocess.run(command, capture_output=True, text=True, timeout=600)

    created = cli("create", "daily", "--pipeline", "orders", "--fabric", "dbx", "--schedule", "0 5 * * *",
                  "--param", "rows=3", "--param", f"out={out}")  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert "orders on default/dbx, 0 5 * * * (UTC)" in created.stdout
    for step in (["commit", "lake", "-m", "Schedule orders daily"], ["push", "lake"]):
        done = subprocess.run(
            [jupyter, "prophecy", "project", *step], capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr
    _, repository, _ = project.projects.open(USER, "lake")
    assert "jobs/daily.yaml" in repository.files_at("origin/main", "jobs"), "committed and pushed"
    deployed = cli("deploy", "daily")
    assert deployed.returncode == 0 and "created Databricks job" in deployed.stdout, deployed.stderr
    ran = cli("run", "daily", "--wait")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip().splitlines()[-1] == "SUCCESS" and pq.read_table(out).num_rows == 3
    runs = json.loads(cli("runs", "daily", "--json").stdout)
    assert [run["state"] for run in runs] == ["SUCCESS"] and runs[0]["link"]
    assert (
        cli("create", "bad", "--pipeline", "orders", "--fabric", "dbx", "--param", "rows=-2").returncode == 0
    )
    assert cli("deploy", "bad").returncode == 0
    failing = cli("run", "bad", "--wait")
    assert failing.returncode == 1 and failing.stdout.strip().splitlines()[-1] == "FAILED"
    assert "rows must not be negative, not -2" in failing.stdout
    assert "Paused job daily" in cli("pause", "daily").stdout
    assert "Resumed job daily" in cli("resume", "daily").stdout
    on_demand = cli("pause", "bad")
    assert on_demand.returncode == 1 and "runs on demand" in on_demand.stderr
    deleted = cli("delete", "daily", "--remote")
    assert deleted.returncode == 0 and "Removed job daily from default/dbx." in deleted.stdout
    assert len(databricks_workspace.jobs) == 1, "only the bad job is left"


def test_job_magics_deploy_run_and_follow_a_databricks_job_from_a_notebook(
    tmp_path, data_dir, databricks_workspace, monkeypatch
):
    """``%job`` in a real kernel talking to a real Jupyter server: the notebook's pipeline and
    fabric by default; deploy, run --wait (SUCCESS), runs, pause, delete --remote."""
    from tests.servers.git_http import GitHttpServer
    from tests.servers.jupyter import start_jupyter
    from tests.servers.kernels import execute

    monkeypatch.setenv("PROPHECY_JUPYTER_PROJECTS_DIR", str(tmp_path / "work"))
    git_server = GitHttpServer(tmp_path / "served", {TOKEN: "x-access-token"}).start()
    server = start_jupyter(tmp_path, data_dir, os.environ["PROPHECY_JUPYTER_KEY"])
    out = tmp_path / "magic.parquet"
    try:
        settings = {"host": databricks_workspace.url, "cluster_id": databricks_workspace.add_cluster("nb")}
        fabric = server.call(
            "POST", "/teams/default/fabrics", {"name": "dbx", "kind": "databricks", "settings": settings}
        )
        server.call("PUT", f"/fabrics/{fabric['id']}/credential", {"secret": databricks_workspace.pat})
        url = git_server.create_repository("lake")
        project = server.call(
            "POST", "/teams/default/projects", {"name": "lake", "url": url, "provider": "github"}
        )
        server.call("PUT", f"/projects/{project['id']}/token", {"token": TOKEN})
        cells = [
            code_cell(f"rows = 4\nseconds = 0\nout = {str(out)!r}", ("parameters",)),
            code_cell(PIPELINE_CELL),
        ]
        metadata = {"prophecy": {"fabric": "dbx", "project": "lake"}}
        notebook = {"cells": cells, "metadata": metadata, "nbformat": 4, "nbformat_minor": 5}
        (server.root / "orders.ipynb").write_text(json.dumps(notebook))
        kernel = server.start_kernel("orders.ipynb")
        client = server.client(kernel)
        try:
            assert execute(client, "%load_ext prophecy_jupyter").ok
            for line in ("%pipeline generate", '%pipeline commit -m "Orders"', "%pipeline push"):
                done = execute(client, line)
                assert done.ok, (line, done.failure)
            created = execute(client, '%job create nightly --schedule "0 3 * * *" --param rows=6')
            assert created.ok and "orders on default/dbx, 0 3 * * * (UTC)" in created.stdout, created.failure
            deployed = execute(client, "%job deploy nightly")
            assert deployed.ok and "created Databricks job" in deployed.stdout, deployed.failure
            ran = execute(client, "%job run nightly --wait")
            assert ran.ok and ran.stdout.strip().splitlines()[-1] == "SUCCESS", (ran.stdout, ran.failure)
            assert pq.read_table(out).num_rows == 6, "the job's value, not the notebook's"
            runs = execute(client, "%job runs nightly")
            assert "SUCCESS" in runs.stdout and f"{databricks_workspace.url}/#job/" in runs.stdout
            assert execute(client, "%job pause nightly").stdout.startswith("Paused job nightly")
            removed = execute(client, "%job delete nightly --remote")
            assert removed.ok and "Removed job nightly from default/dbx." in removed.stdout, removed.failure
            assert databricks_workspace.jobs == {}
            gone = execute(client, "%job runs nightly")
            assert not gone.ok and "no job nightly" in gone.failure
        finally:
            client.stop_channels()
            server.call("DELETE", f"/kernels/{kernel}", api="/api")
    finally:
        server.stop()
        git_server.stop()


def test_a_job_takes_its_code_from_git_at_the_pushed_commit(project, databricks_workspace, tmp_path):
    """``job_code: git``: no workspace import; the job's ``git_source`` is the project's repository
    at the pushed commit, which Databricks checks out with the Git credential stored for it."""
    out = tmp_path / "from-git.parquet"
    dbx = project.fabrics.get(USER, "default/dbx")
    spec = {"name": "git-fed", "kind": "databricks", "settings": {**dbx.settings, "job_code": "git"}}
    fabric = project.fabrics.create(USER, "default", spec)
    project.fabrics.set_secret(USER, fabric.id, databricks_workspace.pat)
    job = {
        "name": "nightly",
        "pipelines": ["orders"],
        "fabric": "git-fed",
        "parameters": {"rows": "5", "out": str(out)},
    }
    project.jobs.create(USER, "lake", job)
    with pytest.raises(
        Invalid, match=r"pipelines/orders/pipeline\.py on main of .* is not what you committed: push first"
    ) as unpushed:
        project.jobs.deploy(USER, "lake", "nightly")
    assert unpushed.value.field == "project"
    project.projects.push(USER, "lake")
    _, repository, _ = project.projects.open(USER, "lake")
    commit = repository.remote_head("main")

    deployed = project.jobs.deploy(USER, "lake", "nightly")
    assert deployed.endswith(f"(code from Git at {commit[:12]}).") and "created Databricks job" in deployed
    assert databricks_workspace.files == {}, "nothing imported into the workspace"
    sdk = _sdk(databricks_workspace)
    (found,) = sdk.jobs.list()
    settings = sdk.jobs.get(found.job_id).settings
    assert settings.git_source.git_url == project.projects.get(USER, "lake").url
    assert (settings.git_source.git_provider.value, settings.git_source.git_commit) == ("gitHub", commit)
    task = settings.tasks[0].spark_python_task
    assert (task.python_file, task.source.value) == ("pipelines/orders/pipeline.py", "GIT")
    assert TOKEN not in json.dumps(databricks_workspace.jobs[found.job_id]["settings"])

    without = project.jobs.run_now(USER, "lake", "nightly")
    failed = project.jobs.wait_for_run(USER, "lake", "nightly", without, timeout=120, poll=0.5)
    assert failed.state == "FAILED" and "no Git credentials for gitHub" in failed.error, failed
    sdk.git_credentials.create(
        git_provider="gitHub", git_username="x-access-token", personal_access_token=TOKEN
    )
    run_id = project.jobs.run_now(USER, "lake", "nightly")
    run = project.jobs.wait_for_run(USER, "lake", "nightly", run_id, timeout=300, poll=0.5)
    assert run.state == "SUCCESS", run
    assert pq.read_table(out).num_rows == 5, "Databricks ran the pipeline as it is in Git"


def test_a_job_size_becomes_a_job_cluster_and_a_workflow_chains_its_tasks():
    from prophecy_jupyter.schedulers.base import PipelineCode
    from prophecy_jupyter.schedulers.databricks_jobs import job_settings
    from prophecy_jupyter.services.jobs import parse_job

    size = {"spark_version": "15.4.x-scala2.12", "node_type_id": "i3.xlarge", "num_workers": 4}
    job = parse_job({"name": "flow", "pipelines": ["load", "report"], "fabric": "t/dbx", "size": "L",
                     "parameters": {"day": "2026-12-01", "strict": True}})  # fmt: skip
    code = [
        PipelineCode("load", "", {"day": ("str", None)}),
        PipelineCode("report", "", {"day": ("str", None), "strict": ("bool", False)}),
    ]
    body = job_settings(
        job, code, "t/p", {"host": "https://dbc.example.com", "cluster_id": "c-1"}, {"L": size}
    )
    assert body["job_clusters"] == [{"job_cluster_key": "L", "new_cluster": size}]
    load, report = body["tasks"]
    assert load["job_cluster_key"] == report["job_cluster_key"] == "L" and "existing_cluster_id" not in load
    assert "depends_on" not in load and report["depends_on"] == [{"task_key": "load"}]
    assert load["spark_python_task"]["parameters"] == ["--day", "2026-12-01"], "only what it declares"
    assert report["spark_python_task"]["parameters"] == ["--day", "2026-12-01", "--strict", "true"]
    assert "schedule" not in body, "on demand"
    with pytest.raises(Invalid, match="Job size L of fabric t/dbx is not a Databricks cluster spec") as bad:
        job_settings(job, code, "t/p", {"host": "h", "cluster_id": "c"}, {"L": {"driverMemory": "4g"}})
    assert bad.value.field == "size"
