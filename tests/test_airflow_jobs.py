"""The Airflow job target against a real Airflow 3 (``.venv-airflow``, which ``make test`` builds
from ``tests/airflow-requirements.txt``): the DAGs it writes are imported by Airflow's own DagBag
and serialized as its DAG processor does, every setting read back from the parsed DAG; hostile
names and values stay data; and a DAG runs (``dag.test()`` on a throw-away SQLite database) its
pipelines' real generated code as Livy batches on our gateway, in order, each task waiting for its
batch, with the job's parameter values, while a failing pipeline fails its task."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
from pathlib import Path

import pytest

from prophecy_jupyter.errors import Invalid
from prophecy_jupyter.schedulers.airflow import AIRFLOW, POLLING_SECONDS, dag_id, export
from prophecy_jupyter.schedulers.base import PipelineCode
from prophecy_jupyter.services.jobs import parse_job
from prophecy_jupyter.services.pipelines import from_notebook

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
        "file": f"{here}/nightly/pipelines/orders/pipeline.py",
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
    assert totals["file"] == f"{here}/nightly/pipelines/totals/pipeline.py"
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
        write(dags / "nightly", files)
    failing, failing_files = spark_pipeline(
        "broken", "rows = 1", "raise RuntimeError(f'broken pipeline {rows}')"
    )
    broken = export(parse_job({**ADHOC, "name": "broken", "pipelines": ["broken"]}), [failing], PROJECT, {})
    write(dags, broken.files)
    write(dags / "broken", failing_files)
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
