"""Scheduled jobs as the project keeps them: ``jobs/<job>.yaml`` beside ``pipelines/``, written into
the user's working copy and committed and pushed with the normal Git flow. A job runs one
pipeline of the project, or several in order (a workflow), on a fabric, on a schedule (a 5-field
cron in an IANA time zone) or on demand, with values for the pipelines' typed parameters, retries,
a timeout, a limit of concurrent runs and e-mails to notify. It is checked against the project's
pipelines and the fabric before it is written, and a wrong field is named; the same job always
gives the same file. A job holds no secret: schedulers reach the fabric with their own identity."""

from __future__ import annotations

import datetime
import re
import time
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from prophecy_jupyter.errors import EngineError, Invalid, NotFound
from prophecy_jupyter.kinds import REGISTRY
from prophecy_jupyter.schedulers.base import (
    ENDED,
    Export,
    JobTarget,
    PipelineCode,
    Reach,
    Run,
    Scheduler,
    SchedulerService,
)
from prophecy_jupyter.services.pipelines import NAME

JOBS_DIR = "jobs"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+\Z")
_CRON_FIELD = re.compile(r"^[0-9A-Za-z*/,\-]+\Z")
_VALUE_TYPES: dict[str, tuple[type, str]] = {
    "int": (int, "an integer"),
    "float": (float, "a number"),
    "bool": (bool, "true or false"),
    "str": (str, "text"),
}


class Schedule(BaseModel):
    """When a job runs: a standard 5-field cron expression read in an IANA time zone."""

    model_config = ConfigDict(extra="forbid")

    cron: str = Field(description="minute hour day-of-month month day-of-week, e.g. '0 2 * * *'")
    timezone: str = Field("UTC", description="IANA time zone the cron is read in, e.g. Europe/Paris")

    @field_validator("cron")
    @classmethod
    def _cron(cls, cron: str) -> str:
        from croniter import croniter

        fields = cron.split()
        if len(fields) != 5 or not all(_CRON_FIELD.match(f) for f in fields):
            raise ValueError("must be 5 fields: minute hour day-of-month month day-of-week")
        if not croniter.is_valid(" ".join(fields)):
            raise ValueError(f"{cron!r} is not a valid cron expression")
        return " ".join(fields)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, name: str) -> str:
        try:
            zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{name!r} is not an IANA time zone (such as UTC or Europe/Paris)") from None
        return name

    def next_runs(self, count: int, after: datetime.datetime | None = None) -> list[datetime.datetime]:
        """The next ``count`` fire times after ``after`` (default: now), in the schedule's zone."""
        from croniter import croniter

        zone = zoneinfo.ZoneInfo(self.timezone)
        start = (after or datetime.datetime.now(datetime.UTC)).astimezone(zone)
        times = croniter(self.cron, start)
        return [times.get_next(datetime.datetime) for _ in range(count)]


class JobSpec(BaseModel):
    """A job as ``jobs/<name>.yaml`` holds it (and the CLI, the magics and the API take it)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="lower-case letters, digits, '-' and '_' (it names the file)")
    pipelines: list[str] = Field(min_length=1, description="pipelines of the project, run in this order")
    fabric: str = Field(description="the fabric the pipelines run on (team/name)")
    schedule: Schedule | None = Field(None, description="none: the job runs on demand")
    parameters: dict[str, bool | int | float | str] = Field(default_factory=dict)
    size: str | None = Field(None, description="one of the fabric's job sizes")
    retries: int = Field(0, ge=0, le=10, description="retries of a failed run")
    timeout_minutes: int | None = Field(None, ge=1, le=7 * 24 * 60, description="a run's time limit")
    max_concurrent_runs: int = Field(1, ge=1, le=100)
    emails: list[str] = Field(default_factory=list, description="who hears of failed runs")

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not NAME.match(name):
            raise ValueError("use lower-case letters, digits, '-' and '_', starting with a letter")
        return name

    @field_validator("pipelines")
    @classmethod
    def _pipelines(cls, names: list[str]) -> list[str]:
        for name in names:
            if not NAME.match(name):
                raise ValueError(f"{name!r} is not a pipeline name")
        if len(set(names)) != len(names):
            raise ValueError("a pipeline is named twice")
        return names

    @field_validator("emails")
    @classmethod
    def _emails(cls, emails: list[str]) -> list[str]:
        for email in emails:
            if not _EMAIL.match(email):
                raise ValueError(f"{email!r} is not an e-mail address")
        return emails

    def describe(self, next_runs: int = 3) -> dict[str, Any]:
        """The job as the API and the CLI show it: its fields and its next fire times (ISO 8601,
        in its zone; none for an on-demand job)."""
        runs = self.schedule.next_runs(next_runs) if self.schedule else []
        return {
            **self.model_dump(),
            "summary": self.summary(),
            "next_runs": [run.isoformat() for run in runs],
        }

    def summary(self) -> str:
        """One line: what runs where, and when."""
        when = f"{self.schedule.cron} ({self.schedule.timezone})" if self.schedule else "on demand"
        return f"{', '.join(self.pipelines)} on {self.fabric}, {when}"

    def file(self) -> tuple[str, bytes]:
        """The job's path in the project and its content (the same job, the same bytes)."""
        body = self.model_dump(exclude_none=False)
        text = yaml.safe_dump(body, sort_keys=False, default_flow_style=False, allow_unicode=True)
        header = f"# Job {self.name}: written by prophecy-jupyter (`jupyter prophecy job`).\n"
        return f"{JOBS_DIR}/{self.name}.yaml", (header + text).encode()


def parse_job(data: Any) -> JobSpec:
    """A job, or Invalid naming the first field that is wrong (``schedule.cron``, ``emails`` ...)."""
    if not isinstance(data, dict):
        raise Invalid("A job is a mapping of its fields.")
    try:
        return JobSpec.model_validate(data)
    except ValidationError as exc:
        raise _invalid(exc, ()) from None


def parse_schedule(data: Any) -> Schedule:
    """A schedule (``{cron, timezone}``), or Invalid naming ``schedule.cron`` or ``schedule.timezone``."""
    if not isinstance(data, dict):
        raise Invalid("A schedule is a cron and a time zone.", "schedule")
    try:
        return Schedule.model_validate(data)
    except ValidationError as exc:
        raise _invalid(exc, ("schedule",)) from None


def _invalid(exc: ValidationError, within: tuple[str, ...]) -> Invalid:
    error = exc.errors()[0]
    where = ".".join([*within, *(str(p) for p in error["loc"] if not isinstance(p, int))])
    message = error["msg"].removeprefix("Value error, ")
    return Invalid(f"Job field {where}: {message}", where or None)


@dataclass(frozen=True)
class PipelineManifest:
    """What a job needs of a pipeline: its typed parameters and what its code runs on."""

    name: str
    parameters: dict[str, str]
    """Name → type (``int``, ``float``, ``bool``, ``str``)."""
    fabric_kind: str | None


def typed_parameters(spec: JobSpec, manifests: list[PipelineManifest]) -> dict[str, bool | int | float | str]:
    """The job's parameter values as their pipelines' types; Invalid (naming ``parameters``) for
    a name no pipeline of the job declares or a value that is not of its type."""
    declared: dict[str, str] = {}
    for manifest in manifests:
        for name, kind in manifest.parameters.items():
            if declared.setdefault(name, kind) != kind:
                raise Invalid(
                    f"Parameter {name} takes {_VALUE_TYPES.get(declared[name], (str, 'text'))[1]} in one "
                    f"pipeline and {_VALUE_TYPES.get(kind, (str, 'text'))[1]} in {manifest.name}: a job "
                    "gives one value to both.",
                    "parameters",
                )
    typed: dict[str, bool | int | float | str] = {}
    for name, value in spec.parameters.items():
        if name not in declared:
            known = ", ".join(sorted(declared)) or "none"
            raise Invalid(
                f"No pipeline of the job has a parameter {name} (they have: {known}).", "parameters"
            )
        typed[name] = _typed(name, value, declared[name])
    return typed


def _typed(name: str, value: Any, kind: str) -> bool | int | float | str:
    """``value`` (text from a command line, or already typed in a file) as the parameter's type."""
    wanted, described = _VALUE_TYPES.get(kind, (str, "text"))
    if isinstance(value, wanted) and not (wanted is int and isinstance(value, bool)):
        return value
    text = str(value).strip()
    try:
        if wanted is bool:
            return {"true": True, "false": False}[text.lower()]
        return wanted(text)
    except (KeyError, ValueError):
        raise Invalid(f"Parameter {name} takes {described}, not {value!r}.", "parameters") from None


class JobProjects(Protocol):
    """What the job service needs of the projects: the user's working copy, read and written, and
    the pipelines' committed files."""

    def get(self, user: str, ref: str) -> Any: ...

    def pipeline_files(self, user: str, ref: str, name: str) -> dict[str, bytes]: ...

    def working_files(self, user: str, ref: str, prefix: str) -> dict[str, bytes]: ...

    def write_files(self, user: str, ref: str, files: dict[str, bytes]) -> list[str]: ...

    def remove_files(self, user: str, ref: str, paths: list[str]) -> list[str]: ...

    def published(self, user: str, ref: str, files: dict[str, bytes]) -> Any: ...


class JobFabrics(Protocol):
    def get(self, user: str, ref: str) -> Any: ...

    def secret(self, user: str, fabric: Any) -> str | None: ...


class JobSessions(Protocol):
    """Runs code and queries in a session of a fabric (a Snowflake job deploys and is operated
    through the user's session)."""

    def run(self, user: str, notebook: str, fabric_ref: str, code: str) -> Any: ...

    def fetch_sql(self, user: str, notebook: str, fabric_ref: str, query: str, limit: int) -> Any: ...


class JobService:
    """The jobs of a project, in the user's working copy and on their fabrics' schedulers."""

    def __init__(self, projects: JobProjects, fabrics: JobFabrics, sessions: Callable[[], JobSessions]):
        self.projects = projects
        self.fabrics = fabrics
        self._sessions = sessions

    def create(self, user: str, ref: str, data: Any, replace: bool = False) -> tuple[JobSpec, list[str]]:
        """Check the job against the project's pipelines and the fabric, and write it into the
        working copy; returns it (the fabric as ``team/name``, parameters typed) and the files
        that changed."""
        spec = parse_job(data)
        path, _ = spec.file()
        if not replace and self.projects.working_files(user, ref, path):
            raise Invalid(
                f"Project {ref} has a job {spec.name} already: replace it, or choose another name.", "name"
            )
        manifests = [self._manifest(user, ref, name) for name in spec.pipelines]
        fabric = self.fabrics.get(user, spec.fabric)
        for manifest in manifests:
            built_for = manifest.fabric_kind
            if built_for is not None and _code_of(built_for) != fabric.kind_of.pipeline_code:
                raise Invalid(
                    f"Pipeline {manifest.name} was generated for a {built_for} fabric; fabric {fabric.ref} "
                    f"({fabric.kind}) runs {fabric.kind_of.pipeline_code} pipelines, not its code.",
                    "fabric",
                )
        if spec.size is not None and spec.size not in fabric.job_sizes:
            sizes = ", ".join(sorted(fabric.job_sizes)) or "none"
            raise Invalid(f"Fabric {fabric.ref} has no job size {spec.size} (it has: {sizes}).", "size")
        spec = spec.model_copy(update={"fabric": fabric.ref, "parameters": typed_parameters(spec, manifests)})
        path, content = spec.file()
        return spec, self.projects.write_files(user, ref, {path: content})

    def list(self, user: str, ref: str) -> list[JobSpec]:
        """The project's jobs in the working copy, by name."""
        files = self.projects.working_files(user, ref, f"{JOBS_DIR}/")
        return [
            self._read(path, content) for path, content in sorted(files.items()) if path.endswith(".yaml")
        ]

    def get(self, user: str, ref: str, name: str) -> JobSpec:
        if not NAME.match(name):
            raise Invalid(f"Job name {name!r}: use lower-case letters, digits, '-' and '_'.", "name")
        path = f"{JOBS_DIR}/{name}.yaml"
        files = self.projects.working_files(user, ref, path)
        if path not in files:
            raise NotFound(f"Project {ref} has no job {name} (jobs/{name}.yaml).")
        return self._read(path, files[path])

    def delete(self, user: str, ref: str, name: str, remote: bool = False) -> tuple[list[str], str | None]:
        """Remove the job's file from the working copy (commit to remove it from the project) and,
        with ``remote``, the deployed job from its scheduler first; the files removed and what the
        scheduler was told."""
        job = self.get(user, ref, name)
        said = self.undeploy(user, ref, name) if remote else None
        path, _ = job.file()
        return self.projects.remove_files(user, ref, [path]), said

    def export(
        self, user: str, ref: str, name: str, target_name: str | None = None
    ) -> tuple[Export, list[str], str]:
        """The job as its fabric's scheduler takes it (a Databricks bundle, an Airflow DAG,
        Snowflake's procedures and tasks), from the pipelines' committed code, written beside the
        job; returns it, the files that changed and the format's name (Invalid when
        ``target_name`` names another format than the fabric's)."""
        job = self.get(user, ref, name)
        target, fabric = self._target(user, job)
        if target_name is not None and target_name != target.name:
            raise Invalid(
                f"Job {name} runs on {fabric.ref} ({fabric.kind}), whose scheduler takes {target.name}, "
                f"not {target_name}.",
                "format",
            )
        project = self.projects_ref(user, ref)
        settings = {**fabric.settings, "job_sizes": fabric.job_sizes}
        exported = target.export(job, self._code(user, ref, job), project, settings)
        return exported, self.projects.write_files(user, ref, exported.files), target.name

    def deploy(self, user: str, ref: str, name: str) -> str:
        """Create the job on its fabric's scheduler, or update it in place, with the pipelines'
        committed code and the user's own credential; what was done."""
        exported, _, _ = self.export(user, ref, name)
        job, scheduler = self._scheduler(user, ref, name)
        done = scheduler.deploy(job, self._code(user, ref, job), exported)
        return f"Deployed job {name} to {job.fabric}: {done}."

    def run_now(self, user: str, ref: str, name: str) -> str:
        """Start a run of the deployed job now; its id."""
        job, scheduler = self._scheduler(user, ref, name)
        return scheduler.run_now(job)

    def runs(self, user: str, ref: str, name: str, limit: int = 20) -> list[Run]:
        """The deployed job's recent runs, newest first."""
        job, scheduler = self._scheduler(user, ref, name)
        return scheduler.runs(job, limit)

    def cancel(self, user: str, ref: str, name: str, run_id: str | None = None) -> list[str]:
        """Cancel a run of the job (every active run without ``run_id``); the ids cancelled."""
        job, scheduler = self._scheduler(user, ref, name)
        return scheduler.cancel(job, run_id)

    def pause(self, user: str, ref: str, name: str) -> str:
        job, scheduler = self._scheduler(user, ref, name)
        scheduler.pause(job)
        return f"Paused job {name}: no scheduled run starts until it is resumed."

    def resume(self, user: str, ref: str, name: str) -> str:
        job, scheduler = self._scheduler(user, ref, name)
        scheduler.resume(job)
        upcoming = job.describe(1)["next_runs"]
        return f"Resumed job {name}" + (f": next run {upcoming[0]}." if upcoming else ".")

    def undeploy(self, user: str, ref: str, name: str) -> str:
        """Remove the deployed job (and what it runs) from its fabric's scheduler."""
        job, scheduler = self._scheduler(user, ref, name)
        scheduler.delete(job, self._code(user, ref, job))
        return f"Removed job {name} from {job.fabric}."

    def wait_for_run(
        self, user: str, ref: str, name: str, run_id: str, timeout: float, poll: float = 2.0
    ) -> Run:
        """The run once it has ended; EngineError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            found = next((run for run in self.runs(user, ref, name) if run.run_id == run_id), None)
            if found is not None and found.state in ENDED:
                return found
            if time.monotonic() > deadline:
                state = found.state if found else "not listed yet"
                raise EngineError(
                    f"Run {run_id} of job {name} did not end within {timeout:.0f} s (it is {state})."
                )
            time.sleep(poll)

    def _target(self, user: str, job: JobSpec) -> tuple[JobTarget, Any]:
        fabric = self.fabrics.get(user, job.fabric)
        target = fabric.kind_of.scheduler
        if target is None:
            raise Invalid(
                f"Jobs on {fabric.kind} fabrics cannot be exported to a scheduler in this version "
                f"(fabric {fabric.ref}).",
                "fabric",
            )
        return target, fabric

    def _scheduler(self, user: str, ref: str, name: str) -> tuple[JobSpec, Scheduler]:
        """The job and its fabric's scheduler, reached as the user."""
        job = self.get(user, ref, name)
        target, fabric = self._target(user, job)
        if target.connect is None:
            raise Invalid(
                f"Jobs exported as {target.name} are deployed and run from {target.name} itself: "
                "`job export` writes them.",
                "fabric",
            )
        notebook = f"job:{ref}:{name}"
        reach = Reach(
            service=self._service(user, target, fabric),
            project=self.projects_ref(user, ref),
            fabric=fabric.ref,
            settings=fabric.settings,
            job_sizes=fabric.job_sizes,
            secret=self.fabrics.secret(user, fabric),
            statements=lambda statements: self._execute(user, notebook, job, statements),
            query=lambda query, limit: self._query(user, notebook, job, query, limit),
            published=lambda: self.projects.published(user, ref, self._code_files(user, ref, job)),
        )
        return job, target.connect(reach)

    def _service(self, user: str, target: JobTarget, fabric: Any) -> SchedulerService | None:
        """The scheduler's own service as the user reaches it, for targets that have one."""
        if target.service_setting is None:
            return None
        named = fabric.settings.get(target.service_setting)
        if not named:
            raise Invalid(
                f"Fabric {fabric.ref} names no {target.service_kind} fabric to deploy and run its jobs on "
                f"(its setting {target.service_setting}); `job export` writes the job for you to deploy.",
                "fabric",
            )
        service = self.fabrics.get(user, named)
        if service.kind != target.service_kind:
            raise Invalid(
                f"Fabric {fabric.ref}'s {target.service_setting} is {service.ref}, a {service.kind} fabric, "
                f"not {target.service_kind}.",
                "fabric",
            )
        return SchedulerService(service.ref, service.settings, self.fabrics.secret(user, service))

    def _execute(self, user: str, notebook: str, job: JobSpec, statements: list[str]) -> None:
        """Run the statements in the user's own session of the job's fabric."""
        program = f"for _statement in {statements!r}:\n    session.sql(_statement).collect()\n"
        run = self._sessions().run(user, notebook, job.fabric, program)
        result = run.result
        if result is None or not result.ok:
            reason = result.error_summary() if result is not None else "it did not finish"
            raise EngineError(f"Job {job.name} on {job.fabric}: {reason}")

    def _query(self, user: str, notebook: str, job: JobSpec, query: str, limit: int) -> list[dict[str, Any]]:
        """A query's rows in the user's own session of the job's fabric."""
        result = self._sessions().fetch_sql(user, notebook, job.fabric, query, limit)
        if result.table is None:
            raise EngineError(f"Job {job.name} on {job.fabric}: {result.error_summary()}")
        return result.table.astype(object).where(result.table.notna(), None).to_dict("records")

    def _code(self, user: str, ref: str, job: JobSpec) -> list[PipelineCode]:
        return [self._committed(user, ref, pipeline) for pipeline in job.pipelines]

    def _code_files(self, user: str, ref: str, job: JobSpec) -> dict[str, bytes]:
        """The committed ``pipeline.py`` of each of the job's pipelines, by path."""
        return {
            f"pipelines/{code.name}/pipeline.py": code.source.encode() for code in self._code(user, ref, job)
        }

    def projects_ref(self, user: str, ref: str) -> str:
        """The project's ``team/name``."""
        return self.projects.get(user, ref).ref

    def _committed(self, user: str, ref: str, name: str) -> PipelineCode:
        """A pipeline's code and typed parameters (with defaults) as committed."""
        files = self.projects.pipeline_files(user, ref, name)
        manifest = yaml.safe_load(files[f"pipelines/{name}/pipeline.yaml"]) or {}
        parameters = {
            str(p["name"]): (str(p.get("type") or "str"), p.get("default"))
            for p in manifest.get("parameters") or []
        }
        return PipelineCode(name, files[f"pipelines/{name}/pipeline.py"].decode(), parameters)

    def _manifest(self, user: str, ref: str, name: str) -> PipelineManifest:
        path = f"pipelines/{name}/pipeline.yaml"
        files = self.projects.working_files(user, ref, path)
        if path not in files:
            raise Invalid(f"Project {ref} has no pipeline {name} (generate it first).", "pipelines")
        manifest = yaml.safe_load(files[path]) or {}
        parameters = {str(p["name"]): str(p.get("type") or "str") for p in manifest.get("parameters") or []}
        return PipelineManifest(name, parameters, manifest.get("fabric_kind"))

    @staticmethod
    def _read(path: str, content: bytes) -> JobSpec:
        try:
            return parse_job(yaml.safe_load(content))
        except (Invalid, yaml.YAMLError) as exc:
            raise Invalid(f"{path} is not a job this version reads: {exc}", "job") from None


def _code_of(kind_name: str) -> str:
    """What a kind's pipelines run on (``spark`` for kinds this version does not know)."""
    kind = REGISTRY.get(kind_name)
    return kind.pipeline_code if kind is not None else "spark"
