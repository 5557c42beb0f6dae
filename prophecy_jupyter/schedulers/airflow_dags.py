"""Airflow: a job as a DAG file, ``dags/<job>.py``, for Airflow 3 (``airflow.sdk``). Each pipeline
becomes a ``LivyOperator`` task that submits its ``pipeline.py`` as a Livy batch and polls it until
it ends (without ``polling_interval`` the operator reports success as soon as the batch is
submitted); a workflow's tasks run one after the other. The job's cron is read in its time zone
(the zone of the DAG's fixed ``start_date``), without catch-up; an on-demand job has no schedule.
The DAG is created unpaused (``is_paused_upon_creation``): Airflow pauses new DAGs by default
(``[core] dags_are_paused_at_creation``), and starts no run of a paused DAG, not even one
triggered by hand.
Retries, the timeout (each task's ``execution_timeout``) and the limit of concurrent runs are the
DAG's; the job's size (one of the fabric's job sizes) gives each batch its Spark conf and Livy
resources. A job's e-mails hear of failed tasks through ``SmtpNotifier`` (Airflow 3 deprecates a
task's ``email``), on Airflow's ``smtp_default`` connection.

Where Livy reads each pipeline's code (the batch's ``file``), from the fabric's settings:

- ``code_location``: a URI prefix Livy can read, such as ``hdfs:///prophecy`` or
  ``s3://bucket/prefix``, under which the project's ``pipelines/<pipeline>/pipeline.py`` are
  copied; the file is ``<code_location>/pipelines/<pipeline>/pipeline.py``.
- otherwise, a path beside the DAG file, ``<dags folder>/<dag_id>/pipelines/<pipeline>/pipeline.py``
  (worked out when Airflow parses the DAG; the folder is named after the DAG, unique per project and
  job, as the DAG file is), for a Livy server that reads the workers' file system (Livy's
  ``livy.file.local-dir-whitelist``).

Airflow reaches Livy through its own connection, ``airflow_connection`` in the fabric's settings
(default ``livy_default``), where its URL and credentials live: the DAG names the connection,
never a URL with credentials or a token. Each task passes the pipeline's parameters as
``--NAME=VALUE`` arguments (``=``, so a value starting with ``-`` stays a value), the job's values
over the pipeline's defaults, each pipeline only those it declares. Values and paths are wrapped in
``literal()``: Airflow renders the operator's fields as Jinja templates, and a value such as
``{{ conn.livy_default.password }}`` must reach the pipeline as written. Only the batch's name is a
template (the run and the try make it unique, as Livy wants of live batches' names). Every value
is written with ``repr()``: the same job always gives the same bytes, and no name or value becomes
code.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from prophecy_jupyter.errors import Invalid
from prophecy_jupyter.schedulers.base import Export, Job, PipelineCode

DEFAULT_CONNECTION = "livy_default"
POLLING_SECONDS = 10
START_DATE = (2024, 1, 1)
"""The DAG's fixed start (in the job's zone): the same job gives the same file, and without
catch-up only runs from now on are scheduled."""
FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*\Z")
_CONNECTION_ID = re.compile(r"^[A-Za-z0-9_.-]{1,250}\Z")
_NOT_IN_AN_ID = re.compile(r"[^A-Za-z0-9_-]")
_SIZE_ARGUMENTS = {
    "conf": "conf",
    "driverMemory": "driver_memory",
    "driverCores": "driver_cores",
    "executorMemory": "executor_memory",
    "executorCores": "executor_cores",
    "numExecutors": "num_executors",
    "queue": "queue",
    "jars": "jars",
    "pyFiles": "py_files",
    "files": "files",
    "archives": "archives",
}
"""A job size's Livy fields → the ``LivyOperator`` arguments that send them."""
TAG_MAX_LEN = 100
"""Airflow refuses a DAG with a longer tag."""


def dag_id(project: str, job_name: str) -> str:
    """``prophecy__<team>__<project>__<job>``, each part with anything but letters, digits, ``_``
    and ``-`` made ``_`` (``-`` is kept: jobs ``a-b`` and ``a_b`` are two DAGs)."""
    return "__".join(_NOT_IN_AN_ID.sub("_", part) for part in ["prophecy", *project.split("/"), job_name])


def task_id(pipeline: str) -> str:
    """A pipeline's task: its name (letters, digits, ``_``, ``-`` and ``.`` are what Airflow takes)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", pipeline) or "pipeline"


def tags(job: Job, project: str) -> list[str]:
    """The DAG's tags: the product, the project and the job (each cut to Airflow's limit)."""
    return [tag[:TAG_MAX_LEN] for tag in ["prophecy-jupyter", f"project:{project}", f"job:{job.name}"]]


def argument_text(value: Any) -> str:
    """A typed value as the pipeline's command line reads it (``true``/``false`` for a flag)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    return str(value)


def arguments(job: Job, pipeline: PipelineCode) -> list[str]:
    """``--NAME=VALUE`` for each parameter the pipeline declares, sorted by name: the job's value,
    else the pipeline's default (a parameter without either is left to the pipeline)."""
    args = []
    for name in sorted(pipeline.parameters):
        if not name.isidentifier():
            raise Invalid(
                f"Pipeline {pipeline.name}: parameter name {name!r} is not an identifier.", "parameters"
            )
        value = job.parameters.get(name, pipeline.parameters[name][1])
        if value is not None:
            args.append(f"--{name}={argument_text(value)}")
    return args


def connection_id(settings: dict[str, Any]) -> str:
    """The Airflow connection to Livy: an id, never a URL or a secret."""
    conn = settings.get("airflow_connection") or DEFAULT_CONNECTION
    if not isinstance(conn, str) or not _CONNECTION_ID.match(conn):
        raise Invalid(
            "airflow_connection names an Airflow connection (letters, digits, '_', '-' and '.'); its URL "
            "and credentials stay in Airflow.",
            "airflow_connection",
        )
    return conn


def code_location(settings: dict[str, Any]) -> str | None:
    """The URI prefix of the pipelines' code for Livy, if the fabric sets one (no credentials in it)."""
    location = settings.get("code_location")
    if not location:
        return None
    parts = urlsplit(str(location))
    if parts.username or parts.password or parts.query or parts.fragment:
        raise Invalid(
            "code_location is a URI prefix without credentials, query or fragment (Livy reads it with "
            "its own identity).",
            "code_location",
        )
    return str(location).rstrip("/")


def size_arguments(job: Job, settings: dict[str, Any]) -> dict[str, Any]:
    """The ``LivyOperator`` arguments of the job's size (one of the fabric's ``job_sizes``: Spark
    ``conf`` and Livy's resources), sorted; none without a size."""
    if job.size is None:
        return {}
    sizes = settings.get("job_sizes") or {}
    if job.size not in sizes:
        known = ", ".join(sorted(sizes)) or "none"
        raise Invalid(f"Fabric {job.fabric} has no job size {job.size} (sizes: {known}).", "size")
    size = sizes[job.size]
    unknown = sorted(set(size) - set(_SIZE_ARGUMENTS))
    if unknown:
        raise Invalid(f"Job size {job.size}: Livy takes no {', '.join(unknown)}.", "size")
    return {_SIZE_ARGUMENTS[key]: size[key] for key in sorted(size)}


def _file(job: Job, project: str, pipeline: str, location: str | None) -> str:
    """The expression of the batch's ``file``."""
    if location is not None:
        return repr(f"{location}/pipelines/{pipeline}/pipeline.py")
    return f"os.path.join(HERE, {dag_id(project, job.name)!r}, 'pipelines', {pipeline!r}, 'pipeline.py')"


def _task(
    job: Job,
    project: str,
    pipeline: PipelineCode,
    index: int,
    conn: str,
    location: str | None,
    sized: dict[str, Any],
) -> list[str]:
    """The ``LivyOperator`` of one pipeline (its variable: ``task_<n>``)."""
    batch = f"{dag_id(project, job.name)}.{task_id(pipeline.name)}" + ".{{ run_id }}.{{ ti.try_number }}"
    return [
        f"    task_{index} = LivyOperator(",
        f"        task_id={task_id(pipeline.name)!r},",
        f"        livy_conn_id={conn!r},",
        f"        file=literal({_file(job, project, pipeline.name, location)}),",
        f"        args=literal({arguments(job, pipeline)!r}),",
        f"        name={batch!r},",
        *[f"        {argument}=literal({value!r})," for argument, value in sized.items()],
        f"        polling_interval={POLLING_SECONDS},",
        "    )",
    ]


def source(job: Job, code: Sequence[PipelineCode], project: str, settings: dict[str, Any]) -> str:
    """The DAG file's text."""
    conn, location, sized = connection_id(settings), code_location(settings), size_arguments(job, settings)
    zone = job.schedule.timezone if job.schedule is not None else "UTC"
    schedule = repr(job.schedule.cron) if job.schedule is not None else "None"
    default_args = [f"        'retries': {int(job.retries)},"]
    if job.timeout_minutes:
        default_args.append(
            f"        'execution_timeout': datetime.timedelta(minutes={int(job.timeout_minutes)}),"
        )
    if job.emails:
        default_args.append(
            f"        'on_failure_callback': SmtpNotifier(to={[str(e) for e in job.emails]!r}),"
        )
    imports = (["import datetime"] if job.timeout_minutes else []) + (
        ["import os"] if location is None else []
    )
    airflow_imports = ["from airflow.providers.apache.livy.operators.livy import LivyOperator"]
    if job.emails:
        airflow_imports.append("from airflow.providers.smtp.notifications.smtp import SmtpNotifier")
    airflow_imports.append("from airflow.sdk import DAG, literal")
    description = f"Job {job.name} of project {project} (prophecy-jupyter)"
    lines = [
        f"# Generated by prophecy-jupyter from jobs/{job.name}.yaml of project {project!r}.",
        "# Do not edit it by hand: change the job and export it again (`jupyter prophecy job export`).",
        "",
        "from __future__ import annotations",
        "",
        *imports,
        *([""] if imports else []),
        "import pendulum",
        *airflow_imports,
        "",
    ]
    if location is None:
        lines += ["HERE = os.path.dirname(os.path.abspath(__file__))", ""]
    lines += [
        "with DAG(",
        f"    dag_id={dag_id(project, job.name)!r},",
        f"    description={description!r},",
        f"    schedule={schedule},",
        f"    start_date=pendulum.datetime({', '.join(map(str, START_DATE))}, tz={zone!r}),",
        "    catchup=False,",
        "    is_paused_upon_creation=False,",
        f"    max_active_runs={int(job.max_concurrent_runs)},",
        "    default_args={",
        *default_args,
        "    },",
        f"    tags={tags(job, project)!r},",
        ") as dag:",
    ]
    for index, pipeline in enumerate(code, start=1):
        lines += _task(job, project, pipeline, index, conn, location, sized)
    if len(code) > 1:
        lines.append("    " + " >> ".join(f"task_{i}" for i in range(1, len(code) + 1)))
    return "\n".join(lines) + "\n"


def export(job: Job, code: Sequence[PipelineCode], project: str, settings: dict[str, Any]) -> Export:
    """The job's ``dags/<job>.py`` (nothing to run: Airflow picks the file up from its dags folder)."""
    if not FILE_NAME.match(job.name):
        raise Invalid(
            f"Job name {job.name!r}: use letters, digits, '-' and '_' (it names the DAG file).", "name"
        )
    if not code:
        raise Invalid(f"Job {job.name} runs no pipeline.", "pipelines")
    return Export({f"dags/{job.name}.py": source(job, code, project, settings).encode()}, [])
