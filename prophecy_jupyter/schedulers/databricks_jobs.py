"""Databricks Jobs (API 2.1/2.2, on databricks-sdk): a job as the workspace runs it. Each pipeline
is a ``spark_python_task`` of its committed ``pipeline.py``: imported into the workspace under
``/Shared/prophecy/<team>/<project>/`` (the fabric's ``job_code_root`` overrides the root), or,
with the fabric's ``job_code: git``, taken by Databricks straight from the project's repository at
the pushed commit (``git_source``: hosted providers only, and the identity the job runs as needs
Git credentials stored in Databricks). Tasks run in
order (each task depends on the one before) on the fabric's cluster, or on a job cluster built
from one of the fabric's job sizes (a ``new_cluster`` spec). The job's cron becomes a Quartz cron in
its zone; parameter values become the tasks' command-line arguments. Deploying finds the job again
by its tags (project and job) and resets it in place: it is never created twice. The job runs as
the workspace identity that deploys it; nothing here holds a secret.

The same job is exported as a Databricks Asset Bundle: ``databricks.yml`` (the bundle, including
``resources/*.yml``, with a target per fabric) and ``resources/<job>.job.yml`` (the job resource,
its tasks pointing at the pipelines' files in the project), for teams that deploy with
``databricks bundle deploy``."""

from __future__ import annotations

import base64
import datetime
import uuid
from collections.abc import Sequence
from typing import Any

import yaml

from prophecy_jupyter.errors import EngineError, Invalid
from prophecy_jupyter.schedulers.base import (
    ENDED,
    Export,
    Job,
    JobTarget,
    PipelineCode,
    Published,
    Reach,
    Run,
)

CODE_ROOT = "/Shared/prophecy"
GIT_PROVIDERS = {
    "github": "gitHub",
    "gitlab": "gitLab",
    "bitbucket-cloud": "bitbucketCloud",
    "bitbucket-server": "bitbucketServer",
    "azure-devops": "azureDevOpsServices",
}
"""Our Git providers → Databricks' ``git_provider`` (Databricks takes no other)."""
PROJECT_TAG, JOB_TAG = "prophecy-project", "prophecy-job"
_WEEKDAYS = {str(unix): str(unix % 7 + 1) for unix in range(8)}
"""Unix day of week (0 or 7 Sunday) → Quartz (1 Sunday ... 7 Saturday)."""


def quartz(cron: str) -> str:
    """A 5-field Unix cron as Databricks' Quartz cron (seconds first; ``?`` for whichever of
    day-of-month and day-of-week is unrestricted; days of week counted from 1, Sunday)."""
    minute, hour, day, month, weekday = cron.split()
    if day != "*" and weekday != "*":
        raise Invalid(
            f"Cron {cron!r} restricts both the day of the month and the day of the week; Databricks "
            "runs one or the other (Quartz cron): keep one and make the other '*'.",
            "schedule.cron",
        )
    if weekday == "*":
        return f"0 {minute} {hour} {day} {month} ?"
    return f"0 {minute} {hour} ? {month} {_quartz_weekdays(weekday)}"


def _quartz_weekdays(field: str) -> str:
    parts = []
    for part in field.split(","):
        values, _, step = part.partition("/")
        if values == "*":
            values = "1-7" if step else "*"
        else:
            values = "-".join(_WEEKDAYS.get(v, v.upper()) for v in values.split("-"))
        parts.append(values + (f"/{step}" if step else ""))
    return ",".join(parts)


def code_path(project: str, pipeline: str, settings: dict[str, Any]) -> str:
    """Where a pipeline's ``pipeline.py`` is imported in the workspace."""
    root = (settings.get("job_code_root") or CODE_ROOT).rstrip("/")
    return f"{root}/{project}/pipelines/{pipeline}/pipeline.py"


def in_repository(pipeline: str) -> str:
    """A pipeline's file in the project's repository."""
    return f"pipelines/{pipeline}/pipeline.py"


def arguments(pipeline: PipelineCode, values: dict[str, Any]) -> list[str]:
    """The pipeline's command line: ``--name value`` for each parameter the job gives a value."""
    args: list[str] = []
    for name in pipeline.parameters:
        if name in values:
            value = values[name]
            args += [f"--{name}", str(value).lower() if isinstance(value, bool) else str(value)]
    return args


def job_settings(
    job: Job,
    pipelines: Sequence[PipelineCode],
    project: str,
    settings: dict[str, Any],
    job_sizes: dict[str, dict[str, Any]],
    file_of: Any = None,
    git: Published | None = None,
) -> dict[str, Any]:
    """The job's settings as the Jobs API takes them (``file_of(pipeline)`` places each task's
    file; by default, where deploy imports it; with ``git``, in the repository at its commit)."""
    if git is not None:
        file_of = in_repository
    file_of = file_of or (lambda name: code_path(project, name, settings))
    cluster: dict[str, Any]
    body: dict[str, Any] = {"name": f"{job.name} ({project})"}
    if job.size is not None:
        size = job_sizes.get(job.size)
        if not size or not {"spark_version", "node_type_id"} <= set(size):
            raise Invalid(
                f"Job size {job.size} of fabric {job.fabric} is not a Databricks cluster spec (it needs "
                "spark_version, node_type_id and num_workers or autoscale).",
                "size",
            )
        body["job_clusters"] = [{"job_cluster_key": job.size, "new_cluster": dict(size)}]
        cluster = {"job_cluster_key": job.size}
    else:
        cluster = {"existing_cluster_id": settings["cluster_id"]}
    tasks = []
    for index, pipeline in enumerate(pipelines):
        task: dict[str, Any] = {"task_key": pipeline.name, **cluster}
        if index:
            task["depends_on"] = [{"task_key": pipelines[index - 1].name}]
        task["spark_python_task"] = {
            "python_file": file_of(pipeline.name),
            "parameters": arguments(pipeline, job.parameters),
        }
        if job.retries:
            task["max_retries"] = job.retries
        tasks.append(task)
    body["tasks"] = tasks
    if git is not None:
        if git.provider not in GIT_PROVIDERS:
            raise Invalid(
                f"Databricks takes code from GitHub, GitLab, Bitbucket and Azure DevOps only, not this "
                f"project's {git.provider} server: set the fabric's job_code to workspace.",
                "fabric",
            )
        body["git_source"] = {
            "git_url": git.url,
            "git_provider": GIT_PROVIDERS[git.provider],
            "git_commit": git.commit,
        }
        for task in tasks:
            task["spark_python_task"]["source"] = "GIT"
    if job.schedule is not None:
        body["schedule"] = {
            "quartz_cron_expression": quartz(job.schedule.cron),
            "timezone_id": job.schedule.timezone,
            "pause_status": "UNPAUSED",
        }
    if job.timeout_minutes:
        body["timeout_seconds"] = job.timeout_minutes * 60
    if job.emails:
        body["email_notifications"] = {"on_failure": list(job.emails)}
    body["max_concurrent_runs"] = job.max_concurrent_runs
    body["tags"] = {PROJECT_TAG: project, JOB_TAG: job.name}
    return body


def export(job: Job, pipelines: Sequence[PipelineCode], project: str, settings: dict[str, Any]) -> Export:
    """The job as a Databricks Asset Bundle: ``databricks.yml`` and ``resources/<job>.job.yml``."""
    resource = job_settings(
        job,
        pipelines,
        project,
        settings,
        settings.get("job_sizes") or {},
        lambda name: f"../pipelines/{name}/pipeline.py",
    )
    for task in resource["tasks"]:
        task["spark_python_task"]["source"] = "WORKSPACE"
    target = job.fabric.replace("/", "-")
    bundle = {
        "bundle": {"name": project.replace("/", "-")},
        "include": ["resources/*.yml"],
        "targets": {target: {"default": True, "workspace": {"host": settings["host"]}}},
    }
    job_file = {"resources": {"jobs": {job.name: resource}}}
    header = (
        f"# Job {job.name} of project {project} as a Databricks Asset Bundle, written by prophecy-jupyter.\n"
    )
    return Export(
        {
            "databricks.yml": (header + _yaml(bundle)).encode(),
            f"resources/{job.name}.job.yml": (header + _yaml(job_file)).encode(),
        },
        [],
    )


def _yaml(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True)


_LIFE_CYCLE = {
    "QUEUED": "PENDING",
    "PENDING": "PENDING",
    "BLOCKED": "PENDING",
    "WAITING_FOR_RETRY": "PENDING",
    "RUNNING": "RUNNING",
    "TERMINATING": "RUNNING",
    "SKIPPED": "SKIPPED",
    "INTERNAL_ERROR": "FAILED",
}
_RESULT = {
    "SUCCESS": "SUCCESS",
    "FAILED": "FAILED",
    "UPSTREAM_FAILED": "FAILED",
    "SUCCESS_WITH_FAILURES": "FAILED",
    "TIMEDOUT": "TIMEDOUT",
    "CANCELED": "CANCELED",
    "UPSTREAM_CANCELED": "CANCELED",
    "EXCLUDED": "SKIPPED",
    "MAXIMUM_CONCURRENT_RUNS_REACHED": "SKIPPED",
}


class DatabricksJobs:
    """A job in the fabric's workspace, reached with the user's own credential."""

    def __init__(self, reach: Reach):
        from prophecy_jupyter.engines.databricks_client import Workspace, WorkspaceConnection

        settings = reach.settings
        connection = WorkspaceConnection(
            host=settings["host"],
            auth=settings.get("auth", "pat"),
            client_id=settings.get("client_id"),
            profile=settings.get("profile"),
        )
        self.reach = reach
        self.workspace = Workspace(connection, reach.secret, reach.fabric)

    def deploy(self, job: Job, pipelines: Sequence[PipelineCode], export: Export) -> str:
        """Import the pipelines' code (unless it comes from Git), then create the job or reset it
        in place."""
        from databricks.sdk.service.workspace import ImportFormat

        client, project = self.workspace.client, self.reach.project
        if self.reach.settings.get("job_code") == "git":
            published = self.reach.published()
            body = job_settings(
                job, pipelines, project, self.reach.settings, self.reach.job_sizes, git=published
            )
            return self._create_or_reset(job, body) + f" (code from Git at {published.commit[:12]})"
        for pipeline in pipelines:
            path = code_path(project, pipeline.name, self.reach.settings)
            self.workspace.call("create a folder", client.workspace.mkdirs, path.rsplit("/", 1)[0])
            content = base64.b64encode(pipeline.source.encode()).decode()
            self.workspace.call(
                f"import pipeline {pipeline.name}",
                client.workspace.import_,
                path,
                content=content,
                format=ImportFormat.AUTO,
                overwrite=True,
            )
        body = job_settings(job, pipelines, project, self.reach.settings, self.reach.job_sizes)
        return self._create_or_reset(job, body)

    def _create_or_reset(self, job: Job, body: dict[str, Any]) -> str:
        """Create the job, or reset the one deployed before (found by its tags) in place."""
        from databricks.sdk.service.jobs import JobSettings

        client = self.workspace.client
        settings = JobSettings.from_dict(body)
        found = self._job_id(job)
        if found is None:
            fields = {name: getattr(settings, name) for name in body}
            created = self.workspace.call("create the job", client.jobs.create, **fields)
            return f"created Databricks job {created.job_id}"
        self.workspace.call("update the job", client.jobs.reset, found, settings)
        return f"updated Databricks job {found} in place"

    def run_now(self, job: Job) -> str:
        """Start a run (sent with an idempotency token: a retried request starts one run)."""
        job_id = self._deployed(job)
        client = self.workspace.client
        started = self.workspace.call(
            "start the job", client.jobs.run_now, job_id, idempotency_token=uuid.uuid4().hex
        )
        return str(started.run_id)

    def runs(self, job: Job, limit: int) -> list[Run]:
        client = self.workspace.client
        job_id = self._deployed(job)
        listed = self.workspace.call(
            "list the job's runs", lambda: list(client.jobs.list_runs(job_id=job_id, limit=min(limit, 25)))
        )
        return [self._run(found) for found in listed[:limit]]

    def cancel(self, job: Job, run_id: str | None) -> list[str]:
        client = self.workspace.client
        active = [run.run_id for run in self.runs(job, 25) if run.state not in ENDED]
        if run_id is not None:
            if run_id not in active:
                raise Invalid(f"Run {run_id} of job {job.name} is not running.", "run")
            active = [run_id]
        for found in active:
            self.workspace.call(f"cancel run {found}", client.jobs.cancel_run, int(found))
        return active

    def pause(self, job: Job) -> None:
        self._pause_status(job, "PAUSED")

    def resume(self, job: Job) -> None:
        self._pause_status(job, "UNPAUSED")

    def delete(self, job: Job, pipelines: Sequence[PipelineCode]) -> None:
        """Delete the job (the pipelines' imported code stays: other jobs may run it)."""
        client = self.workspace.client
        self.workspace.call("delete the job", client.jobs.delete, self._deployed(job))

    def _pause_status(self, job: Job, status: str) -> None:
        from databricks.sdk.service.jobs import JobSettings

        if job.schedule is None:
            raise Invalid(
                f"Job {job.name} runs on demand: it has no schedule to pause or resume.", "schedule"
            )
        schedule = {
            "quartz_cron_expression": quartz(job.schedule.cron),
            "timezone_id": job.schedule.timezone,
            "pause_status": status,
        }
        client = self.workspace.client
        settings = JobSettings.from_dict({"schedule": schedule})
        self.workspace.call(
            "change the schedule", client.jobs.update, self._deployed(job), new_settings=settings
        )

    def _job_id(self, job: Job) -> int | None:
        """The deployed job, found by its tags (and name)."""
        client = self.workspace.client
        name = f"{job.name} ({self.reach.project})"
        listed = self.workspace.call("list jobs", lambda: list(client.jobs.list(name=name)))
        for found in listed:
            tags = (found.settings.tags if found.settings else None) or {}
            if tags.get(PROJECT_TAG) == self.reach.project and tags.get(JOB_TAG) == job.name:
                return found.job_id
        return None

    def _deployed(self, job: Job) -> int:
        job_id = self._job_id(job)
        if job_id is None:
            raise Invalid(f"Job {job.name} is not deployed to {job.fabric}: deploy it first.", "job")
        return job_id

    def _run(self, found: Any) -> Run:
        """A run as the service tells it: its state, times, page, and the error a failed task gave."""
        state = found.state
        life = state.life_cycle_state.value if state and state.life_cycle_state else "PENDING"
        result = state.result_state.value if state and state.result_state else None
        told = (
            _RESULT.get(result or "", "FAILED") if life == "TERMINATED" else _LIFE_CYCLE.get(life, "PENDING")
        )
        error = None
        if told in ("FAILED", "TIMEDOUT"):
            error = self._error(found.run_id) or (state.state_message if state else None)
        return Run(
            run_id=str(found.run_id),
            state=told,
            started=_time(found.start_time),
            ended=_time(found.end_time),
            error=error,
            link=found.run_page_url,
        )

    def _error(self, run_id: int) -> str | None:
        """What the first failed task reported."""
        import requests
        from databricks.sdk.errors import DatabricksError

        client = self.workspace.client
        try:
            run = client.jobs.get_run(run_id)
            for task in run.tasks or []:
                result = task.state.result_state.value if task.state and task.state.result_state else None
                if result in ("FAILED", "TIMEDOUT"):
                    output = client.jobs.get_run_output(task.run_id)
                    return f"{task.task_key}: {output.error or task.state.state_message}"
        except (DatabricksError, requests.RequestException) as exc:  # the state message still says why
            return f"(its error could not be read: {type(exc).__name__})"
        return None


def _time(millis: int | None) -> datetime.datetime | None:
    return datetime.datetime.fromtimestamp(millis / 1000, datetime.UTC) if millis else None


def connect(reach: Reach) -> DatabricksJobs:
    if not reach.settings.get("host"):
        raise EngineError(f"Fabric {reach.fabric} has no workspace host.")
    return DatabricksJobs(reach)


DATABRICKS_JOBS = JobTarget(name="bundle", export=export, connect=connect)
