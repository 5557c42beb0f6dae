"""Snowflake tasks: a job as the SQL Snowflake runs it with. Each pipeline becomes a Python stored
procedure whose handler is the pipeline's ``main(session, ...)`` (its code inline, its typed
parameters the procedure's, with their defaults), and the job a task calling it on the fabric's
warehouse (serverless without one) on the job's cron read in its zone (``USING CRON``). A workflow
is a chain of tasks, each ``AFTER`` the one before. Children are resumed before the root, as
Snowflake requires; an on-demand job's root stays suspended and runs with ``EXECUTE TASK``. Tasks
run as the role that owns them: nothing here holds a secret. Snowflake sends a task's failures
through a notification integration, not to addresses: a job's e-mails are listed in the SQL for
whoever sets one up."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from prophecy_jupyter.errors import Invalid
from prophecy_jupyter.schedulers.base import ENDED, Export, Job, JobTarget, PipelineCode, Reach, Run

RUNTIME_VERSION = "3.11"
_SQL_TYPES = {"int": "NUMBER", "float": "FLOAT", "bool": "BOOLEAN", "str": "VARCHAR"}


def identifier(*parts: str) -> str:
    """An unquoted Snowflake identifier made of ``parts`` (letters, digits and ``_``)."""
    return "_".join(re.sub(r"[^A-Za-z0-9_]", "_", part) for part in parts).upper()


def literal(value: Any) -> str:
    """A SQL literal of a typed parameter value (text with ``'`` and ``\\`` escaped)."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        return repr(value)
    text = str(value).replace("\\", "\\\\").replace("'", "''")
    return f"'{text}'"


def procedure_name(project: str, pipeline: str) -> str:
    """The stored procedure of a project's pipeline (``PROPHECY_<PROJECT>_<PIPELINE>``)."""
    return identifier("PROPHECY", project.rsplit("/", 1)[-1], pipeline)


def task_names(job: Job) -> list[str]:
    """The job's tasks, one per pipeline: the root is named after the job."""
    root = identifier(job.name)
    return [root] + [identifier(job.name, str(i + 1)) for i in range(1, len(job.pipelines))]


def procedure(project: str, pipeline: PipelineCode) -> str:
    """``CREATE OR REPLACE PROCEDURE`` of the pipeline, its code inline."""
    if "$$" in pipeline.source:
        raise Invalid(f"Pipeline {pipeline.name}'s code holds '$$', which would end the procedure's body.")
    arguments = ", ".join(
        f"{identifier(name)} {_SQL_TYPES.get(kind, 'VARCHAR')} DEFAULT {literal(default)}"
        for name, (kind, default) in pipeline.parameters.items()
    )
    return (
        f"CREATE OR REPLACE PROCEDURE {procedure_name(project, pipeline.name)}({arguments})\n"
        "  RETURNS VARCHAR\n"
        "  LANGUAGE PYTHON\n"
        f"  RUNTIME_VERSION = '{RUNTIME_VERSION}'\n"
        "  PACKAGES = ('snowflake-snowpark-python')\n"
        "  HANDLER = 'main'\n"
        "  EXECUTE AS OWNER\n"
        f"  COMMENT = {literal(f'prophecy-jupyter pipeline {pipeline.name} of project {project}')}\n"
        f"AS $$\n{pipeline.source.rstrip()}\n$$"
    )


def task(
    job: Job, project: str, pipeline: PipelineCode, names: list[str], index: int, warehouse: str | None
) -> str:
    """``CREATE OR REPLACE TASK`` calling the pipeline's procedure with the job's values."""
    lines = [f"CREATE OR REPLACE TASK {names[index]}"]
    if warehouse:
        lines.append(f"  WAREHOUSE = {warehouse}")
    if index == 0:
        if job.schedule is not None:
            lines.append(f"  SCHEDULE = 'USING CRON {job.schedule.cron} {job.schedule.timezone}'")
        lines.append(f"  ALLOW_OVERLAPPING_EXECUTION = {'TRUE' if job.max_concurrent_runs > 1 else 'FALSE'}")
        if job.retries:
            lines.append(f"  TASK_AUTO_RETRY_ATTEMPTS = {job.retries}")
    if job.timeout_minutes:
        lines.append(f"  USER_TASK_TIMEOUT_MS = {job.timeout_minutes * 60_000}")
    lines.append(f"  COMMENT = {literal(f'prophecy-jupyter job {job.name} of project {project}')}")
    if index > 0:
        lines.append(f"  AFTER {names[index - 1]}")
    values = ", ".join(
        f"{identifier(name)} => {literal(job.parameters[name])}"
        for name in pipeline.parameters
        if name in job.parameters
    )
    lines.append(f"AS\n  CALL {procedure_name(project, pipeline.name)}({values})")
    return "\n".join(lines)


def statements(job: Job, pipelines: Sequence[PipelineCode], project: str, warehouse: str | None) -> list[str]:
    """The job's SQL in the order it deploys: procedures, tasks, then the tasks resumed (children
    first; the root only when the job has a schedule)."""
    names = task_names(job)
    sql = [procedure(project, pipeline) for pipeline in pipelines]
    sql += [task(job, project, pipeline, names, i, warehouse) for i, pipeline in enumerate(pipelines)]
    resumed = names[:0:-1] + (names[:1] if job.schedule is not None else [])
    return sql + [f"ALTER TASK {name} RESUME" for name in resumed]


def export(job: Job, pipelines: Sequence[PipelineCode], project: str, settings: dict[str, Any]) -> Export:
    """The job's ``jobs/<job>.snowflake.sql`` and the statements that deploy it (in the fabric's
    database and schema, where the procedures and tasks live)."""
    if not settings.get("database") or not settings.get("schema"):
        raise Invalid(
            f"Fabric {job.fabric} needs a database and a schema for job {job.name}: Snowflake keeps "
            "procedures and tasks in one (set them on the fabric).",
            "fabric",
        )
    sql = statements(job, pipelines, project, settings.get("warehouse"))
    header = [f"-- Job {job.name} of project {project} as Snowflake tasks, written by prophecy-jupyter."]
    if job.schedule is None:
        header.append(f"-- On demand: EXECUTE TASK {task_names(job)[0]};")
    if job.emails:
        header.append(
            f"-- Failures should reach {', '.join(job.emails)}: Snowflake sends them through a notification "
            "integration (ALTER TASK ... SET ERROR_INTEGRATION = ...)."
        )
    text = "\n".join(header) + "\n\n" + "".join(f"{statement};\n\n" for statement in sql)
    return Export({f"jobs/{job.name}.snowflake.sql": text.rstrip("\n").encode() + b"\n"}, sql)


_STATES = {
    "SCHEDULED": "PENDING",
    "EXECUTING": "RUNNING",
    "SUCCEEDED": "SUCCESS",
    "FAILED": "FAILED",
    "FAILED_AND_AUTO_SUSPENDED": "FAILED",
    "CANCELLED": "CANCELED",
    "SKIPPED": "SKIPPED",
}


def delete_statements(job: Job, pipelines: Sequence[PipelineCode], project: str) -> list[str]:
    """Drop the tasks (root first, which suspends the graph), then the pipelines' procedures (a
    procedure is named with its argument types)."""
    tasks = [f"DROP TASK IF EXISTS {name}" for name in task_names(job)]
    procedures = []
    for pipeline in pipelines:
        types = ", ".join(_SQL_TYPES.get(kind, "VARCHAR") for kind, _ in pipeline.parameters.values())
        procedures.append(f"DROP PROCEDURE IF EXISTS {procedure_name(project, pipeline.name)}({types})")
    return tasks + procedures


def runs_query(job: Job, limit: int) -> str:
    """The root task's recent runs from ``TASK_HISTORY``, newest first."""
    return (
        "SELECT RUN_ID, STATE, SCHEDULED_TIME AS STARTED, COMPLETED_TIME AS ENDED, ERROR_MESSAGE AS ERROR, "
        "RETURN_VALUE AS RESULT FROM TABLE(INFORMATION_SCHEMA.TASK_HISTORY("
        f"TASK_NAME => '{task_names(job)[0]}', RESULT_LIMIT => {int(limit)})) ORDER BY SCHEDULED_TIME DESC"
    )


class SnowflakeTasks:
    """A job's tasks, operated with SQL in the user's own Snowpark session (as the user's role)."""

    def __init__(self, reach: Reach):
        self.reach = reach

    def deploy(self, job: Job, pipelines: Sequence[PipelineCode], export: Export) -> str:
        self.reach.statements(export.statements)
        return f"{len(export.statements)} statement(s) run"

    def run_now(self, job: Job) -> str:
        """Run the task graph once now (its root; Snowflake runs the rest after it). Snowflake
        gives the run no id until it is scheduled: the newest run is the one started."""
        before = {run.run_id for run in self.runs(job, 5)}
        self.reach.statements([f"EXECUTE TASK {task_names(job)[0]}"])
        fresh = [run.run_id for run in self.runs(job, 5) if run.run_id not in before]
        return fresh[0] if fresh else "(scheduled)"

    def runs(self, job: Job, limit: int) -> list[Run]:
        return [
            Run(
                run_id=str(row["RUN_ID"]),
                state=_STATES.get(str(row["STATE"]), "PENDING"),
                started=row.get("STARTED"),
                ended=row.get("ENDED"),
                error=row.get("ERROR"),
                result=None if row.get("RESULT") is None else str(row["RESULT"]),
            )
            for row in self.reach.query(runs_query(job, limit), limit)
        ]

    def cancel(self, job: Job, run_id: str | None) -> list[str]:
        """Snowflake cancels a task's running executions together, not one by one."""
        active = [run.run_id for run in self.runs(job, 20) if run.state not in ENDED]
        if run_id is not None and run_id not in active:
            raise Invalid(f"Run {run_id} of job {job.name} is not running.", "run")
        root = task_names(job)[0]
        self.reach.statements([f"SELECT SYSTEM$USER_TASK_CANCEL_ONGOING_EXECUTIONS('{root}')"])
        return active

    def pause(self, job: Job) -> None:
        """Suspend the root: no scheduled run starts until it is resumed."""
        self.reach.statements([f"ALTER TASK {task_names(job)[0]} SUSPEND"])

    def resume(self, job: Job) -> None:
        self.reach.statements([f"ALTER TASK {task_names(job)[0]} RESUME"])

    def delete(self, job: Job, pipelines: Sequence[PipelineCode]) -> None:
        self.reach.statements(delete_statements(job, pipelines, self.reach.project))


SNOWFLAKE_TASKS = JobTarget(name="snowflake", export=export, connect=SnowflakeTasks)
