"""The Airflow job target against a real Airflow 3 (``.venv-airflow``, which ``make test`` builds
from ``tests/airflow-requirements.txt``): the DAGs it writes are imported by Airflow's own DagBag
and serialized as its DAG processor does, every setting read back from the parsed DAG; hostile
names and values stay data; and a DAG runs (``dag.test()`` on a throw-away SQLite database) its
pipelines' real generated code as Livy batches on our gateway, in order, each task waiting for its
batch, with the job's parameter values, while a failing pipeline fails its task.

Then jobs are deployed to and operated on a real Airflow (``tests/servers/airflow.py``: its API
server, scheduler and DAG processor, started once for the module), through the product's services,
as the user of an airflow fabric: deploy (twice: one DAG), run now to SUCCESS with the job's values,
a failing run with the pipeline's error, a cancelled run whose Livy batch is stopped, pause and
resume, delete; the fabric's connection check, a wrong password, a reader, a missing dags folder,
an import error; and a start of a run that is never sent twice."""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import subprocess
import time
import zoneinfo
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from prophecy_jupyter.errors import AuthenticationError, EngineError, Invalid
from prophecy_jupyter.schedulers.airflow import AIRFLOW
from prophecy_jupyter.schedulers.airflow_dags import POLLING_SECONDS, dag_id, export
from prophecy_jupyter.schedulers.base import Export, PipelineCode
from prophecy_jupyter.services.connection_test import check_fabric
from prophecy_jupyter.services.jobs import parse_job
from prophecy_jupyter.services.pipelines import from_notebook
from prophecy_jupyter.services.runtime import build_services
from tests.conftest import USER
from tests.servers.airflow import free_port, start_airflow
from tests.servers.fault_proxy import FaultProxy
from tests.servers.git_http import served_project
from tests.test_snowflake_sessions import code_cell

ROOT = Path(__file__).resolve().parent.parent
AIRFLOW_PYTHON = ROOT / ".venv-airflow" / "bin" / "python"
PROJECT = "data-team/warehouse"
NIGHTLY = {
    "name": "nightly",
    "pipelines": ["orders", "totals"],
    "fabric": "data-team/gw",
    "schedule": {"cron": "30 2 * * 1-5", "timezone": "Europe/Paris"},
    "parameters": {"rows": 7, "label": "eu", "strict": True},
    "size": "large",
    "retries": 2,
    "timeout_minutes": 90,
    "max_concurrent_runs": 3,
    "emails": ["data-team@example.com", "oncall@example.com"],
}
ADHOC = {"name": "adhoc-load", "pipelines": ["orders"], "fabric": "data-team/gw"}
ORDERS = PipelineCode("orders", "", {"rows": ("int", 5), "label": ("str", "all"), "region": ("str", None)})
TOTALS = PipelineCode("totals", "", {"strict": ("bool", False), "ratio": ("float", 0.5)})

# What the parsed DAGs look like, as JSON, from inside Airflow's own environment.
INSPECT = """
import json, sys, warnings
warnings.simplefilter("always")  # a deprecated argument is a warning the DagBag captures
from airflow.dag_processing.dagbag import DagBag
from airflow.serialization.serialized_objects import DagSerialization

def plain(value):
    return getattr(value, "value", value)  # literal(...) as the batch will get it

bag = DagBag(dag_folder=sys.argv[1])
dags = {}
for dag_id, dag in bag.dags.items():
    DagSerialization.to_dict(dag)  # what the DAG processor stores
    timetable = dag.timetable
    tasks = {}
    for task in dag.tasks:
        tasks[task.task_id] = {
            "operator": type(task).__name__,
            "upstream": sorted(task.upstream_task_ids),
            "downstream": sorted(task.downstream_task_ids),
            "retries": task.retries,
            "execution_timeout": task.execution_timeout and task.execution_timeout.total_seconds(),
            "livy_conn_id": task._livy_conn_id,
            "file": plain(task.spark_params["file"]),
            "args": plain(task.spark_params["args"]),
            "name": task.spark_params["name"],
            "conf": plain(task.spark_params["conf"]),
            "executor_memory": plain(task.spark_params["executor_memory"]),
            "num_executors": plain(task.spark_params["num_executors"]),
            "polling_interval": task._polling_interval,
            "deferrable": task.deferrable,
            "email": task.email,
            "notify": [getattr(c, "to", None) for c in task.on_failure_callback or []],
        }
    dags[dag_id] = {
        "cron": getattr(timetable, "expression", None),
        "timezone": str(getattr(getattr(timetable, "timezone", None), "name", None)),
        "timetable": type(timetable).__name__,
        "dag_timezone": str(dag.timezone.name),
        "start_date": dag.start_date.isoformat(),
        "catchup": dag.catchup,
        "paused_upon_creation": dag.is_paused_upon_creation,
        "max_active_runs": dag.max_active_runs,
        "tags": sorted(dag.tags),
        "description": dag.description,
        "fileloc": dag.fileloc,
        "tasks": tasks,
        "order": [t.task_id for t in dag.topological_sort()],
    }
errors = {k: str(v) for k, v in bag.import_errors.items()}
warned = {k: [str(w) for w in v] for k, v in bag.captured_warnings.items()}
print("RESULT " + json.dumps({"errors": errors, "warnings": warned, "dags": dags}))
"""

# Run one DAG end to end, as `airflow dags test` does, on the database of AIRFLOW_HOME.
RUN = """
import json, sys
from airflow.dag_processing.dagbag import DagBag

bag = DagBag(dag_folder=sys.argv[1])
assert not bag.import_errors, bag.import_errors
run = bag.dags[sys.argv[2]].test()


def plain(state):
    return getattr(state, "value", state)


states = {ti.task_id: plain(ti.state) for ti in run.get_task_instances()}
print("RESULT " + json.dumps({"state": plain(run.state), "tasks": states}))
"""


@pytest.fixture(scope="module")
def airflow_python() -> Path:
    if not AIRFLOW_PYTHON.exists():
        pytest.fail(
            f"{AIRFLOW_PYTHON} is missing: `make test` builds Airflow's own virtualenv (.venv-airflow) from "
            "tests/airflow-requirements.txt; `make .venv-airflow/.installed` builds only that."
        )
    return AIRFLOW_PYTHON


def airflow(python: Path, script: str, *args: str, home: Path, env: dict[str, str] | None = None) -> dict:
    """Run ``script`` with Airflow's interpreter (AIRFLOW_HOME: ``home``); its ``RESULT`` line."""
    done = subprocess.run(
        [str(python), "-c", script, *args],
        env={**airflow_env(home), **(env or {})},
        cwd=home.parent,
        capture_output=True,
        text=True,
        timeout=600,
    )
    results = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and results, f"{done.stdout[-6000:]}\n{done.stderr[-6000:]}"
    return {**json.loads(results[-1].removeprefix("RESULT ")), "output": done.stdout + done.stderr}


def write(folder: Path, files: dict[str, bytes]) -> None:
    for path, content in files.items():
        target = folder / path.removeprefix("dags/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)


def test_dags_of_a_scheduled_workflow_and_an_on_demand_job_import_in_airflow(airflow_python, tmp_path):
    nightly, adhoc = parse_job(NIGHTLY), parse_job(ADHOC)
    sizes = {
        "large": {"conf": {"spark.sql.shuffle.partitions": "400"}, "executorMemory": "8g", "numExecutors": 4}
    }
    settings = {"airflow_connection": "livy_warehouse", "job_sizes": sizes}
    exported = export(nightly, [ORDERS, TOTALS], PROJECT, settings)
    assert list(exported.files) == ["dags/nightly.py"] and exported.statements == []
    assert export(nightly, [ORDERS, TOTALS], PROJECT, dict(settings)).files == exported.files  # same bytes
    text = exported.files["dags/nightly.py"].decode()
    assert text.startswith(
        "# Generated by prophecy-jupyter from jobs/nightly.yaml of project 'data-team/warehouse'."
    )
    assert "Do not edit it by hand" in text.splitlines()[1]
    on_demand = export(adhoc, [ORDERS], PROJECT, {"code_location": "hdfs:///prophecy/warehouse/"})
    dags = tmp_path / "dags"
    write(dags, {**exported.files, **on_demand.files})

    parsed = airflow(airflow_python, INSPECT, str(dags), home=tmp_path / "home")
    assert parsed["errors"] == {} and parsed["warnings"] == {}  # no deprecated API either
    assert sorted(parsed["dags"]) == [
        "prophecy__data-team__warehouse__adhoc-load",
        "prophecy__data-team__warehouse__nightly",
    ]
    dag = parsed["dags"][dag_id(PROJECT, "nightly")]
    assert (dag["timetable"], dag["cron"], dag["timezone"]) == (
        "CronTriggerTimetable",
        "30 2 * * 1-5",
        "Europe/Paris",
    )
    assert dag["dag_timezone"] == "Europe/Paris" and dag["start_date"] == "2023-12-31T23:00:00+00:00"
    assert dag["catchup"] is False and dag["max_active_runs"] == 3
    assert dag["paused_upon_creation"] is False, "Airflow would pause it, and run nothing of it"
    assert dag["tags"] == ["job:nightly", "project:data-team/warehouse", "prophecy-jupyter"]
    assert dag["order"] == ["orders", "totals"]
    here = str(dags)
    orders, totals = dag["tasks"]["orders"], dag["tasks"]["totals"]
    assert orders == {
        "operator": "LivyOperator",
        "upstream": [],
        "downstream": ["totals"],
        "retries": 2,
        "execution_timeout": 90 * 60.0,
        "livy_conn_id": "livy_warehouse",
        "file": f"{here}/{dag_id(PROJECT, 'nightly')}/pipelines/orders/pipeline.py",
        "args": ["--label=eu", "--rows=7"],  # the job's values; region has no default and no value
        "name": "prophecy__data-team__warehouse__nightly.orders.{{ run_id }}.{{ ti.try_number }}",
        "conf": {"spark.sql.shuffle.partitions": "400"},  # the job's size
        "executor_memory": "8g",
        "num_executors": 4,
        "polling_interval": POLLING_SECONDS,
        "deferrable": False,
        "email": None,
        "notify": [["data-team@example.com", "oncall@example.com"]],
    }
    assert totals["upstream"] == ["orders"] and totals["downstream"] == []
    assert totals["args"] == ["--ratio=0.5", "--strict=true"]  # a default, and the job's flag
    assert totals["file"] == f"{here}/{dag_id(PROJECT, 'nightly')}/pipelines/totals/pipeline.py"
    assert (totals["retries"], totals["execution_timeout"], totals["polling_interval"]) == (2, 5400.0, 10)

    adhoc_dag = parsed["dags"][dag_id(PROJECT, "adhoc-load")]
    assert adhoc_dag["timetable"] == "NullTimetable" and adhoc_dag["cron"] is None
    assert adhoc_dag["max_active_runs"] == 1 and adhoc_dag["dag_timezone"] == "UTC"
    task = adhoc_dag["tasks"]["orders"]
    assert task["file"] == "hdfs:///prophecy/warehouse/pipelines/orders/pipeline.py"
    assert task["livy_conn_id"] == "livy_default" and task["args"] == ["--label=all", "--rows=5"]
    assert (task["retries"], task["execution_timeout"], task["notify"]) == (0, None, [])
    assert (task["conf"], task["executor_memory"], task["num_executors"]) == ({}, None, None)
    assert task["polling_interval"] == POLLING_SECONDS
    assert AIRFLOW.name == "airflow" and AIRFLOW.export is export


HOSTILE = (
    "x' + __import__('os').system('touch PWNED') + '\"\"\"\n\\\"); import os #"
    "{{ conn.livy_default.password }}"
)


def test_hostile_names_and_values_stay_data(airflow_python, tmp_path):
    job = parse_job({**ADHOC, "name": "adhoc", "parameters": {"label": "--" + HOSTILE}})
    project = f"te'am\"\n__import__('os')/{HOSTILE}"
    location = "s3://bucket/it's\"\n{{ var.value.secret }}"
    exported = export(job, [ORDERS], project, {"code_location": location})
    text = exported.files["dags/adhoc.py"].decode()
    header = text.splitlines()[:3]  # the project's newlines did not end the comment
    assert (
        header[0].startswith("# Generated by") and header[1].startswith("# Do not edit") and header[2] == ""
    )
    dags = tmp_path / "dags"
    write(dags, exported.files)

    parsed = airflow(airflow_python, INSPECT, str(dags), home=tmp_path / "home")
    assert parsed["errors"] == {}
    assert not (tmp_path / "PWNED").exists()
    [dag] = parsed["dags"].values()
    assert dag["tags"] == sorted(["prophecy-jupyter", f"project:{project}"[:100], "job:adhoc"])
    assert dag["description"] == f"Job adhoc of project {project} (prophecy-jupyter)"
    task = dag["tasks"]["orders"]
    assert task["args"] == [f"--label=--{HOSTILE}", "--rows=5"]
    assert task["file"] == f"{location}/pipelines/orders/pipeline.py"


@dataclasses.dataclass
class Job:
    """A job as the ``Job`` protocol describes it, without the services' validation."""

    name: str
    pipelines: list[str]
    fabric: str
    schedule: None = None
    parameters: dict = dataclasses.field(default_factory=dict)
    size: str | None = None
    retries: int = 0
    timeout_minutes: int | None = None
    max_concurrent_runs: int = 1
    emails: list[str] = dataclasses.field(default_factory=list)


@pytest.mark.parametrize(
    ("change", "settings", "field"),
    [
        ({"name": "../../etc/x"}, {}, "name"),
        ({"name": "a'\nimport os"}, {}, "name"),
        ({}, {"airflow_connection": "http://admin:hunter2@livy:8998"}, "airflow_connection"),
        ({}, {"airflow_connection": "livy'); import os #"}, "airflow_connection"),
        ({}, {"code_location": "s3://AKIA:secret@bucket/prefix"}, "code_location"),
        ({}, {"code_location": "https://store/prefix?sig=abc"}, "code_location"),
        ({"size": "huge"}, {"job_sizes": {"small": {"driverMemory": "1g"}}}, "size"),
    ],
)
def test_what_cannot_be_written_safely_is_refused(change, settings, field):
    job = Job(**{**ADHOC, **change})
    with pytest.raises(Invalid) as refused:
        export(job, [ORDERS], PROJECT, settings)
    assert refused.value.field == field


def test_a_parameter_name_that_is_not_an_identifier_is_refused():
    with pytest.raises(Invalid, match="not an identifier"):
        export(parse_job(ADHOC), [PipelineCode("orders", "", {"x; import os": ("str", "a")})], PROJECT, {})


def spark_pipeline(name: str, parameters: str, cell: str) -> tuple[PipelineCode, dict[str, bytes]]:
    """A pipeline generated from a notebook: its ``parameters`` cell, then ``cell`` on the fabric."""
    cells = [
        {"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": parameters, "outputs": []},
        {"cell_type": "code", "metadata": {}, "source": f"%%spark\n{cell}", "outputs": []},
    ]
    notebook = {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    pipeline = from_notebook(notebook, f"{name}.ipynb", name, "data-team/gw", "livy", "spark")
    files = pipeline.files()
    code = PipelineCode(
        name,
        files[f"pipelines/{name}/pipeline.py"].decode(),
        {p.name: (p.type, p.default) for p in pipeline.parameters},
    )
    return code, files


ORDERS_CELL = """\
import json, time
time.sleep(1)
sized = [spark.conf.get(key, None) for key in ("spark.prophecy.size", "spark.driver.memory")]
marker = {"rows": spark.range(rows).count(), "label": label, "strict": strict, "size": sized}
json.dump(marker, open(out, "w"))"""
TOTALS_CELL = """\
import json
seen = json.load(open(after)) if after else None  # orders' marker, if its batch has ended
json.dump({"ratio": ratio, "strict": strict, "after": seen}, open(totals_out, "w"))"""


def airflow_env(home: Path) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    return {**environment, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}


def test_the_dag_runs_its_pipelines_as_livy_batches_on_the_gateway(airflow_python, gateway, livy, tmp_path):
    orders, orders_files = spark_pipeline(
        "orders", 'rows = 5\nlabel = "all"\nstrict = False\nout = ""', ORDERS_CELL
    )
    totals, totals_files = spark_pipeline(
        "totals", 'ratio = 0.5\nstrict = False\ntotals_out = ""\nafter = ""', TOTALS_CELL
    )
    first, second = tmp_path / "orders.json", tmp_path / "totals.json"
    label = "--eu " + HOSTILE  # a value starting with '-', quotes, a newline and a Jinja expression
    values = {"rows": 7, "label": label, "strict": True, "out": str(first), "totals_out": str(second)}
    job = parse_job({**NIGHTLY, "retries": 0, "emails": [], "parameters": {**values, "after": str(first)}})
    sizes = {"large": {"conf": {"spark.prophecy.size": "large {{ ds }}"}, "driverMemory": "1g"}}
    exported = export(job, [orders, totals], PROJECT, {"job_sizes": sizes})
    dags = tmp_path / "dags"
    write(dags, exported.files)
    for files in (orders_files, totals_files):  # the pipelines beside the DAG, where it looks for them
        write(dags / dag_id(PROJECT, "nightly"), files)
    failing, failing_files = spark_pipeline(
        "broken", "rows = 1", "raise RuntimeError(f'broken pipeline {rows}')"
    )
    broken = export(parse_job({**ADHOC, "name": "broken", "pipelines": ["broken"]}), [failing], PROJECT, {})
    write(dags, broken.files)
    write(dags / dag_id(PROJECT, "broken"), failing_files)
    home = tmp_path / "home"
    home.mkdir()
    migrated = subprocess.run(
        [str(airflow_python.parent / "airflow"), "db", "migrate"],
        env=airflow_env(home),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert migrated.returncode == 0, migrated.stderr[-4000:]
    host, port = gateway.url.removeprefix("http://").split(":")
    connection = {
        "conn_type": "livy",
        "host": host,
        "port": int(port),
        "schema": "http",
        "extra": {"Authorization": f"Bearer {gateway.token}"},  # only in this process's environment
    }
    env = {"AIRFLOW_CONN_LIVY_DEFAULT": json.dumps(connection), "AIRFLOW__CORE__DAGS_FOLDER": str(dags)}

    ran = airflow(airflow_python, RUN, str(dags), dag_id(PROJECT, "nightly"), home=home, env=env)
    assert ran["state"] == "success", ran["output"][-6000:]
    assert ran["tasks"] == {"orders": "success", "totals": "success"}
    assert ran["output"].count("terminated with state: success") == 2  # each task polled its batch
    orders_marker = json.loads(first.read_text())
    assert orders_marker == {"rows": 7, "label": label, "strict": True, "size": ["large {{ ds }}", "1g"]}
    # totals found orders' marker: orders' task returned only once its batch had ended (it polled).
    assert json.loads(second.read_text()) == {"ratio": 0.5, "strict": True, "after": orders_marker}
    batches = livy.get(f"{gateway.url}/batches", timeout=10).json()["sessions"]
    ours = [b for b in batches if (b.get("name") or "").startswith(dag_id(PROJECT, "nightly") + ".")]
    assert sorted(b["name"].split(".")[1] for b in ours) == ["orders", "totals"]
    assert all(b["state"] == "success" and ".manual__" in b["name"] for b in ours), ours

    failed = airflow(airflow_python, RUN, str(dags), dag_id(PROJECT, "broken"), home=home, env=env)
    assert failed["state"] == "failed" and failed["tasks"] == {"broken": "failed"}, failed["output"][-6000:]
    assert "did not succeed" in failed["output"] and "broken pipeline 1" in failed["output"]

    # No secret the test holds is in a generated file, nor in what Airflow logged.
    assert gateway.token and gateway.token not in ran["output"] + failed["output"]
    for path in dags.rglob("*"):
        if path.is_file():
            assert gateway.token.encode() not in path.read_bytes(), path


# -- Jobs deployed to and operated on a real Airflow, through the product's services ------------

AIRFLOW_USER, AIRFLOW_PASSWORD = "ops", "af-" + "Pw9x" * 6
VIEWER, VIEWER_PASSWORD = "reader", "rd-" + "Vw3k" * 6
GIT_TOKEN = "ghp_" + "A1rf" * 9
PIPELINE_CELL = """%%spark
import time
from pyspark.sql import functions as F
assert rows >= 0, f"rows must not be negative, not {rows}"
time.sleep(seconds)
spark.range(rows).withColumn("label", F.lit(label)).write.mode("overwrite").parquet(out)"""


@pytest.fixture(scope="module")
def airflow_server(airflow_python, gateway, tmp_path_factory):
    """Airflow 3 (API server, scheduler, DAG processor) for this module, reaching the test gateway
    through its own ``livy_default`` connection (the gateway's token only in its environment)."""
    host, port = gateway.url.removeprefix("http://").split(":")
    livy = {
        "conn_type": "livy",
        "host": host,
        "port": int(port),
        "schema": "http",
        "extra": {"Authorization": f"Bearer {gateway.token}"},
    }
    users = {AIRFLOW_USER: AIRFLOW_PASSWORD, VIEWER: VIEWER_PASSWORD}
    server = start_airflow(tmp_path_factory.mktemp("airflow"), users, {"livy_default": livy})
    print(f"Airflow started in {server.startup_seconds:.1f} s")
    yield server
    server.stop()


@pytest.fixture
def airflow_project(data_dir, gateway, airflow_server, tmp_path):
    """Services with an airflow fabric (the user's secret: their Airflow password) and a livy fabric
    on the gateway whose jobs go to it, and project ``lake`` with pipeline ``orders`` committed."""

    built = build_services(data_dir, bootstrap_user=USER)
    settings = {"url": airflow_server.url, "username": AIRFLOW_USER, "dags_folder": str(airflow_server.dags)}
    built.fabrics.create(USER, "default", {"name": "af", "kind": "airflow", "settings": settings})
    built.fabrics.set_secret(USER, "default/af", AIRFLOW_PASSWORD)
    livy = {"url": gateway.url, "auth": "bearer", "airflow_fabric": "default/af"}
    built.fabrics.create(USER, "default", {"name": "gw", "kind": "livy", "settings": livy})
    built.fabrics.set_secret(USER, "default/gw", gateway.token)
    with served_project(built, tmp_path / "served", "lake", GIT_TOKEN, USER):
        cells = [
            code_cell("rows = 5\nseconds = 0\nlabel = 'all'\nout = '/tmp/nowhere'", ("parameters",)),
            code_cell(PIPELINE_CELL),
        ]
        notebook = {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
        built.projects.generate(
            USER, "lake", notebook, "orders.ipynb", None, built.fabrics.get(USER, "default/gw")
        )
        built.projects.commit(USER, "lake", "Add orders")
        yield built
    built.close()


def _batches(gateway, livy, prefix: str) -> list[dict]:
    listed = livy.get(f"{gateway.url}/batches", timeout=10).json()["sessions"]
    return [batch for batch in listed if (batch.get("name") or "").startswith(prefix)]


def _wait(what: str, condition, timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"{what} within {timeout:.0f} s")


@pytest.mark.spark
@pytest.mark.slow
def test_a_job_is_deployed_run_cancelled_paused_and_removed_on_a_real_airflow(
    airflow_project, airflow_server, gateway, livy, tmp_path
):

    jobs, dags = airflow_project.jobs, airflow_server.dags
    api = airflow_server.api()
    out = tmp_path / "orders.parquet"
    spec = {
        "name": "nightly",
        "pipelines": ["orders"],
        "fabric": "gw",
        "schedule": {"cron": "30 2 * * 1-5", "timezone": "Europe/Berlin"},
        "parameters": {"rows": "7", "label": "eu", "out": str(out)},
    }
    jobs.create(USER, "lake", spec)
    exported, changed, target = jobs.export(USER, "lake", "nightly", "airflow")
    assert (target, changed) == ("airflow", ["dags/nightly.py"])
    dag = dag_id("default/lake", "nightly")
    assert dag == "prophecy__default__lake__nightly"

    started = time.monotonic()
    first = jobs.deploy(USER, "lake", "nightly")
    deploy_seconds = time.monotonic() - started
    assert first.startswith(
        f"Deployed job nightly to default/gw: wrote DAG {dag} and the code of 1 pipeline(s)"
    )
    assert "Airflow parsed it in " in first and "it runs on '30 2 * * 1-5' (Europe/Berlin)" in first, first
    assert "Airflow starts one run now for the latest scheduled time already past" in first, first
    details = api.get(f"{airflow_server.url}/api/v2/dags/{dag}/details", timeout=30).json()
    assert details["timetable_summary"] == "30 2 * * 1-5", details
    # The cron is read in the job's zone (the API's own "timezone" field says UTC whatever the DAG's).
    next_run = datetime.datetime.fromisoformat(details["next_dagrun_run_after"].replace("Z", "+00:00"))
    in_berlin = next_run.astimezone(zoneinfo.ZoneInfo("Europe/Berlin"))
    assert (in_berlin.strftime("%H:%M"), in_berlin.weekday() < 5) == ("02:30", True), details
    assert details["is_paused"] is False and details["tags"]
    errors = api.get(f"{airflow_server.url}/api/v2/importErrors", timeout=30).json()
    assert errors["total_entries"] == 0, errors
    committed = airflow_project.projects.pipeline_files(USER, "lake", "orders")[
        "pipelines/orders/pipeline.py"
    ]
    assert (dags / dag / "pipelines" / "orders" / "pipeline.py").read_bytes() == committed
    assert (dags / f"{dag}.py").read_bytes() == exported.files["dags/nightly.py"]

    again = jobs.deploy(USER, "lake", "nightly")
    assert "Airflow parsed it in " in again, again
    listed = api.get(f"{airflow_server.url}/api/v2/dags", params={"tags": "job:nightly"}, timeout=30).json()
    assert [d["dag_id"] for d in listed["dags"]] == [dag], "deploying twice keeps one DAG"
    assert sorted(path.name for path in dags.iterdir()) == [dag, f"{dag}.py"], "no temporary file is left"

    run_id = jobs.run_now(USER, "lake", "nightly")
    on_demand = {key: value for key, value in spec.items() if key != "schedule"}
    jobs.create(USER, "lake", {**on_demand, "name": "broken", "parameters": {"rows": "-1", "out": str(out)}})
    assert "it runs on demand" in jobs.deploy(USER, "lake", "broken")
    broken = jobs.run_now(USER, "lake", "broken")
    run = jobs.wait_for_run(USER, "lake", "nightly", run_id, timeout=240, poll=1)
    assert (run.state, run.error) == ("SUCCESS", None), run
    assert run.started <= run.ended and run.link == f"{airflow_server.url}/dags/{dag}/runs/{run_id}"
    written = pq.read_table(out).to_pydict()
    assert sorted(written["id"]) == list(range(7)) and set(written["label"]) == {"eu"}, "the job's values"
    failed = jobs.wait_for_run(USER, "lake", "broken", broken, timeout=240, poll=1)
    assert failed.state == "FAILED" and failed.error.startswith("orders: "), failed
    assert "AssertionError: rows must not be negative, not -1" in failed.error, failed.error
    assert " INFO " not in failed.error, "Spark's chatter is left out"

    jobs.create(
        USER, "lake", {**on_demand, "name": "slow", "parameters": {"seconds": "300", "out": str(out)}}
    )
    jobs.deploy(USER, "lake", "slow")
    slow = jobs.run_now(USER, "lake", "slow")
    slow_batches = f"{dag_id('default/lake', 'slow')}.orders.{slow}."
    _wait("the slow run's batch started", lambda: _batches(gateway, livy, slow_batches), 180)
    with pytest.raises(Invalid, match=f"Run {run_id} of job slow is not running") as not_running:
        jobs.cancel(USER, "lake", "slow", run_id)
    assert not_running.value.field == "run"
    assert jobs.cancel(USER, "lake", "slow") == [slow]
    cancelled = jobs.wait_for_run(USER, "lake", "slow", slow, timeout=60, poll=1)
    assert cancelled.state == "CANCELED", cancelled
    _wait(
        "the Livy batch was stopped (LivyOperator.on_kill)",
        lambda: not _batches(gateway, livy, slow_batches),
        60,
    )
    assert jobs.cancel(USER, "lake", "slow") == [], "nothing left to cancel"
    slow_task = f"/api/v2/dags/{dag_id('default/lake', 'slow')}/dagRuns/{slow}/taskInstances/orders"
    slow_log = api.get(
        f"{airflow_server.url}{slow_task}/logs/1",
        params={"full_content": "true"},
        timeout=30,
    ).json()
    assert any("Deleting batch session" in str(line.get("event")) for line in slow_log["content"])

    assert jobs.pause(USER, "lake", "nightly").startswith("Paused job nightly")
    assert api.get(f"{airflow_server.url}/api/v2/dags/{dag}", timeout=30).json()["is_paused"] is True
    with pytest.raises(Invalid, match="is paused on Airflow fabric default/af") as paused:
        jobs.run_now(USER, "lake", "nightly")
    assert paused.value.field == "schedule"
    assert jobs.resume(USER, "lake", "nightly").startswith("Resumed job nightly: next run ")
    assert api.get(f"{airflow_server.url}/api/v2/dags/{dag}", timeout=30).json()["is_paused"] is False
    with pytest.raises(Invalid, match="runs on demand") as on_demand_pause:
        jobs.pause(USER, "lake", "broken")
    assert on_demand_pause.value.field == "schedule"
    # Besides ours, Airflow runs the latest tick already past when a scheduled DAG is created or
    # resumed (catchup=False): that run is its own, scheduled__<time>.
    listed_runs = [r.run_id for r in jobs.runs(USER, "lake", "nightly")]
    assert run_id in listed_runs and all(r == run_id or r.startswith("scheduled__") for r in listed_runs)

    secrets = [AIRFLOW_PASSWORD, gateway.token, GIT_TOKEN]
    generated = [*exported.files.values(), *(p.read_bytes() for p in dags.rglob("*") if p.is_file())]
    for content in generated:
        assert not any(secret.encode() in content for secret in secrets)

    removed, said = jobs.delete(USER, "lake", "nightly", remote=True)
    assert removed == ["jobs/nightly.yaml"] and said == "Removed job nightly from default/gw."
    assert not (dags / f"{dag}.py").exists() and not (dags / dag).exists()
    assert api.get(f"{airflow_server.url}/api/v2/dags/{dag}", timeout=30).status_code == 404

    running = jobs.run_now(USER, "lake", "slow")
    running_batches = f"{dag_id('default/lake', 'slow')}.orders.{running}."
    _wait("the slow run's batch started", lambda: _batches(gateway, livy, running_batches), 180)
    jobs.undeploy(USER, "lake", "slow")  # Airflow refuses while a task runs: the run is cancelled first
    slow_dag = f"{airflow_server.url}/api/v2/dags/{dag_id('default/lake', 'slow')}"
    assert api.get(slow_dag, timeout=30).status_code == 404
    _wait("the running batch was stopped", lambda: not _batches(gateway, livy, running_batches), 60)
    for name in ("broken", "slow"):
        jobs.undeploy(USER, "lake", name)
        jobs.undeploy(USER, "lake", name)  # nothing left is not an error
    assert sorted(path.name for path in dags.iterdir()) == []
    print(f"deploy took {deploy_seconds:.1f} s")


@pytest.mark.spark
@pytest.mark.slow
def test_the_airflow_fabric_is_checked_and_refuses_wrong_passwords_readers_and_a_missing_dags_folder(
    airflow_project, airflow_server, gateway, tmp_path
):

    fabrics, jobs, dags = airflow_project.fabrics, airflow_project.jobs, airflow_server.dags
    report = check_fabric(fabrics, USER, "default/af")
    assert (
        report.ok and report.message.startswith("Connected to Airflow 3.3.") and report.stage == "connected"
    )
    assert report.steps[-3:] == [
        f"auth: token issued to {AIRFLOW_USER}",
        "dags: readable",
        f"dags folder: {dags} writable",
    ]
    assert fabrics.get(USER, "default/af").kind_of.describe()["cells"] == "not supported"

    def airflow_fabric(name: str, **settings) -> None:
        """An airflow fabric ``name`` and a livy fabric ``<name>-gw`` on the gateway whose jobs go to it."""
        fabric = {"url": airflow_server.url, "username": AIRFLOW_USER, "dags_folder": str(dags), **settings}
        fabrics.create(USER, "default", {"name": name, "kind": "airflow", "settings": fabric})
        livy = {"url": gateway.url, "auth": "bearer", "airflow_fabric": f"default/{name}"}
        fabrics.create(USER, "default", {"name": f"{name}-gw", "kind": "livy", "settings": livy})
        jobs.create(USER, "lake", {"name": f"job-{name}", "pipelines": ["orders"], "fabric": f"{name}-gw"})

    wrong = "wrong-" + "Zq7x" * 5
    airflow_fabric("wrong")
    fabrics.set_secret(USER, "default/wrong", wrong)
    failed = check_fabric(fabrics, USER, "default/wrong")
    assert (failed.ok, failed.stage) == (False, "auth") and "default/wrong" in failed.message, failed
    with pytest.raises(AuthenticationError, match="Airflow fabric default/wrong refused user ops") as refused:
        jobs.deploy(USER, "lake", "job-wrong")
    for said in (str(refused.value), failed.message, *failed.steps):
        assert wrong not in said and AIRFLOW_PASSWORD not in said

    airflow_fabric("reader", username=VIEWER)
    fabrics.set_secret(USER, "default/reader", VIEWER_PASSWORD)
    assert check_fabric(fabrics, USER, "default/reader").ok, "a viewer may read the DAGs"
    with pytest.raises(AuthenticationError, match="Airflow fabric default/reader refused to deploy the DAG"):
        jobs.deploy(USER, "lake", "job-reader")
    assert not any(dags.iterdir()), "nothing is written for a user Airflow does not let change the DAG"

    airflow_fabric("elsewhere", dags_folder=None)
    fabrics.set_secret(USER, "default/elsewhere", AIRFLOW_PASSWORD)
    with pytest.raises(Invalid, match="has no dags_folder") as no_folder:
        jobs.deploy(USER, "lake", "job-elsewhere")
    assert no_folder.value.field == "dags_folder"
    with pytest.raises(
        Invalid, match="Job job-elsewhere is not deployed to Airflow fabric default/elsewhere"
    ):
        jobs.run_now(USER, "lake", "job-elsewhere")

    # An import error Airflow gives for the DAG is the deploy's error (a DAG file that is not ours).
    jobs.create(USER, "lake", {"name": "unparsable", "pipelines": ["orders"], "fabric": "gw"})
    job, scheduler = jobs._scheduler(USER, "lake", "unparsable")
    unparsable = Export({"dags/unparsable.py": b"raise RuntimeError('no DAG here, airflow')\n"}, [])
    with pytest.raises(
        EngineError,
        match=r"(?s)could not import DAG prophecy__default__lake__unparsable: .*RuntimeError: no DAG here",
    ):
        scheduler.deploy(job, [], unparsable)
    scheduler.delete(job, [])
    assert not any(dags.iterdir())

    airflow_fabric("missing", dags_folder=str(tmp_path / "missing"))
    fabrics.set_secret(USER, "default/missing", AIRFLOW_PASSWORD)
    assert check_fabric(fabrics, USER, "default/missing").stage == "resource"
    airflow_fabric("down", url=f"http://127.0.0.1:{free_port()}")
    fabrics.set_secret(USER, "default/down", AIRFLOW_PASSWORD)
    assert check_fabric(fabrics, USER, "default/down").stage == "tcp"


@pytest.mark.spark
@pytest.mark.slow
def test_a_run_is_started_once_when_the_connection_to_airflow_breaks(
    airflow_project, airflow_server, tmp_path
):
    """Reads are retried on 503; the POST that starts a run is never sent twice: an answer lost on
    the way back is found again by the run's id, and a request that did not arrive is reported."""
    fabrics, jobs = airflow_project.fabrics, airflow_project.jobs
    out = tmp_path / "flaky.parquet"
    spec = {
        "name": "flaky",
        "pipelines": ["orders"],
        "fabric": "gw",
        "parameters": {"rows": "1", "out": str(out)},
    }
    jobs.create(USER, "lake", spec)
    jobs.deploy(USER, "lake", "flaky")
    dag = dag_id("default/lake", "flaky")
    direct = fabrics.get(USER, "default/af").settings
    proxy = FaultProxy(airflow_server.url).start()
    try:
        fabrics.update(USER, "default/af", {"settings": {**direct, "url": proxy.url}})
        fabrics.set_secret(USER, "default/af", AIRFLOW_PASSWORD)
        read, start = rf"^/api/v2/dags/{dag}$", rf"^/api/v2/dags/{dag}/dagRuns$"
        proxy.add("GET", read, "status_before", times=2, status=503)
        proxy.add("POST", start, "drop_after")  # Airflow starts the run; its answer is lost
        started = jobs.run_now(USER, "lake", "flaky")
        assert len(proxy.requests_to("GET", read)) == 3, "a read is retried on 503"
        assert len(proxy.requests_to("POST", start)) == 1
        assert [run.run_id for run in jobs.runs(USER, "lake", "flaky")] == [started]

        proxy.add("POST", start, "drop_before")  # Airflow never sees it
        with pytest.raises(EngineError, match="it was not sent again, so that nothing runs twice"):
            jobs.run_now(USER, "lake", "flaky")
        assert len(proxy.requests_to("POST", start)) == 2, "not resent"
        assert [run.run_id for run in jobs.runs(USER, "lake", "flaky")] == [started]
    finally:
        proxy.stop()
        fabrics.update(USER, "default/af", {"settings": direct})
        fabrics.set_secret(USER, "default/af", AIRFLOW_PASSWORD)
    ran = jobs.wait_for_run(USER, "lake", "flaky", started, timeout=240, poll=1)
    assert ran.state == "SUCCESS" and pq.read_table(out).num_rows == 1, ran
    jobs.undeploy(USER, "lake", "flaky")


@pytest.mark.spark
@pytest.mark.slow
def test_the_command_line_takes_a_notebook_to_a_job_run_by_airflow(
    data_dir, gateway, airflow_server, tmp_path, monkeypatch
):
    """Only ``jupyter prophecy``: an airflow fabric and a livy fabric whose jobs go to it, a project
    on a real Git server, the notebook's pipeline generated, committed and pushed, a nightly job
    created, committed and pushed, deployed, run with --wait (SUCCESS), its runs, pause and resume,
    and its removal from Airflow."""
    from tests.servers.git_http import GitHttpServer
    from tests.test_cli import cli

    monkeypatch.setenv("PROPHECY_JUPYTER_PROJECTS_DIR", str(tmp_path / "work"))
    out = tmp_path / "cli.parquet"
    added = cli("fabric", "add", "af", "--kind", "airflow", "--url", airflow_server.url, "--username",
                AIRFLOW_USER, "--dags-folder", str(airflow_server.dags), stdin=AIRFLOW_PASSWORD)  # fmt: skip
    assert added.returncode == 0, added.stderr
    tested = cli("fabric", "test", "af")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    livy_settings = ["--url", gateway.url, "--auth", "bearer", "--airflow-fabric", "default/af"]
    livy = cli("fabric", "add", "gw", *livy_settings, stdin=gateway.token)
    assert livy.returncode == 0, livy.stderr
    git = GitHttpServer(tmp_path / "served", {GIT_TOKEN: "x-access-token"}).start()
    try:
        url = git.create_repository("lake")
        assert cli("project", "add", "lake", "--url", url, "--provider", "github").returncode == 0
        assert cli("project", "token", "lake", stdin=GIT_TOKEN).returncode == 0
        cells = [
            code_cell(f"rows = 3\nseconds = 0\nlabel = 'all'\nout = {str(out)!r}", ("parameters",)),
            code_cell(PIPELINE_CELL),
        ]
        notebook = {
            "cells": cells,
            "metadata": {"prophecy": {"fabric": "gw"}},
            "nbformat": 4,
            "nbformat_minor": 5,
        }
        (tmp_path / "orders.ipynb").write_text(json.dumps(notebook))
        generated = cli("pipeline", "generate", str(tmp_path / "orders.ipynb"), "--project", "lake")
        assert generated.returncode == 0, generated.stderr
        nightly = [
            "--pipeline",
            "orders",
            "--fabric",
            "gw",
            "--schedule",
            "0 1 * * *",
            "--timezone",
            "Asia/Tokyo",
        ]
        created = cli("job", "create", "nightly", "--project", "lake", *nightly, "--param", "label=cli")
        assert created.returncode == 0 and "orders on default/gw, 0 1 * * * (Asia/Tokyo)" in created.stdout
        assert cli("project", "commit", "lake", "-m", "Orders, nightly").returncode == 0
        assert cli("project", "push", "lake").stdout.strip() == "Pushed main."
        exported = cli("job", "export", "nightly", "--project", "lake", "--format", "airflow")
        assert exported.returncode == 0 and "dags/nightly.py" in exported.stdout, exported.stderr
        deployed = cli("job", "deploy", "nightly", "--project", "lake", timeout=300)
        assert deployed.returncode == 0 and "Airflow parsed it in " in deployed.stdout, deployed.stderr
        ran = cli("job", "run", "nightly", "--project", "lake", "--wait", timeout=400)
        assert ran.returncode == 0 and ran.stdout.strip().splitlines()[-1] == "SUCCESS", (
            ran.stdout + ran.stderr
        )
        table = pq.read_table(out).to_pylist()
        assert len(table) == 3 and {row["label"] for row in table} == {"cli"}, "the job's value"
        runs = json.loads(cli("job", "runs", "nightly", "--project", "lake", "--json").stdout)
        ours = [run for run in runs if run["state"] == "SUCCESS"]
        assert ours and ours[0]["link"].startswith(f"{airflow_server.url}/dags/")
        assert "Paused job nightly" in cli("job", "pause", "nightly", "--project", "lake").stdout
        assert "Resumed job nightly" in cli("job", "resume", "nightly", "--project", "lake").stdout
        removed = cli("job", "delete", "nightly", "--project", "lake", "--remote", timeout=120)
        assert removed.returncode == 0 and "Removed job nightly from default/gw." in removed.stdout, (
            removed.stderr
        )
        assert not list(airflow_server.dags.glob("*lake__nightly*")), "the DAG file is gone"
    finally:
        git.stop()
