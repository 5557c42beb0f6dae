"""What every job target is given and gives: the job and each of its pipelines' code and typed
parameters in; the files committed beside the job and a scheduler that deploys and operates it out.
A run's state is told in one vocabulary whatever the scheduler."""

from __future__ import annotations

import datetime
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

RUN_STATES = ("PENDING", "RUNNING", "SUCCESS", "FAILED", "CANCELED", "TIMEDOUT", "SKIPPED")
"""A run's state on every scheduler; the last five are final."""
ENDED = frozenset(RUN_STATES[2:])


class Schedule(Protocol):
    cron: str
    timezone: str


class Job(Protocol):
    """A job as the services hold it (``services.jobs.JobSpec``)."""

    name: str
    pipelines: list[str]
    fabric: str
    schedule: Schedule | None
    parameters: dict[str, bool | int | float | str]
    size: str | None
    retries: int
    timeout_minutes: int | None
    max_concurrent_runs: int
    emails: list[str]


@dataclass(frozen=True)
class PipelineCode:
    """A pipeline of the job as its target needs it."""

    name: str
    source: str
    """Its ``pipeline.py``."""
    parameters: dict[str, tuple[str, Any]]
    """Name → (type, default): ``int``, ``float``, ``bool`` or ``str``."""


@dataclass(frozen=True)
class Export:
    """A job exported for its scheduler: the files committed beside it, and what deploys it."""

    files: dict[str, bytes]
    statements: list[str]
    """What the deploy runs, in order (a target that deploys by statements, such as Snowflake's)."""


@dataclass(frozen=True)
class Run:
    """One run of a deployed job."""

    run_id: str
    state: str
    """One of ``RUN_STATES``."""
    started: datetime.datetime | None = None
    ended: datetime.datetime | None = None
    error: str | None = None
    """What the scheduler reported of a failure."""
    result: str | None = None
    link: str | None = None
    """The run's page on the scheduler, where it has one."""

    def describe(self) -> dict[str, Any]:
        """The run as the API and the CLI show it (times in ISO 8601)."""
        duration = (self.ended - self.started).total_seconds() if self.started and self.ended else None
        return {
            "run_id": self.run_id,
            "state": self.state,
            "started": self.started.isoformat() if self.started else None,
            "ended": self.ended.isoformat() if self.ended else None,
            "duration_seconds": duration,
            "error": self.error,
            "result": self.result,
            "link": self.link,
        }


class Published(Protocol):
    """The commit of the project's branch on its remote that holds the job's code."""

    url: str
    provider: str
    """The project's Git provider (``github``, ``gitlab``, ``bitbucket-cloud`` ...)."""
    branch: str
    commit: str


@dataclass(frozen=True)
class SchedulerService:
    """A scheduler that is a service of its own (Airflow), kept as a fabric of its kind: its
    settings and the user's own secret for it."""

    ref: str
    settings: dict[str, Any]
    secret: str | None


@dataclass(frozen=True)
class Reach:
    """How one user reaches a job's scheduler: the fabric, the user's own secret for it, and (for
    schedulers operated with SQL, such as Snowflake's) the user's session of it."""

    project: str
    """The project's ``team/name``."""
    fabric: str
    settings: dict[str, Any]
    job_sizes: dict[str, dict[str, Any]]
    secret: str | None
    statements: Callable[[list[str]], None]
    """Runs statements, in order, in the user's session of the fabric."""
    query: Callable[[str, int], list[dict[str, Any]]]
    """A query's rows (column names as the fabric gives them) in the user's session."""
    published: Callable[[], Published]
    """The remote commit holding the pipelines' committed code (for schedulers that take code
    straight from Git); Invalid when that code is not pushed yet."""
    service: SchedulerService | None = None
    """The scheduler's own service, for targets that have one (``JobTarget.service_setting``)."""


class Scheduler(Protocol):
    """A job's operations on its scheduler, for one user."""

    def deploy(self, job: Job, pipelines: Sequence[PipelineCode], export: Export) -> str:
        """Create the job or update it in place (never a second copy); what was done."""
        ...

    def run_now(self, job: Job) -> str:
        """Start a run; its id."""
        ...

    def runs(self, job: Job, limit: int) -> list[Run]:
        """Recent runs, newest first."""
        ...

    def cancel(self, job: Job, run_id: str | None) -> list[str]:
        """Cancel one run, or every active run; the ids cancelled."""
        ...

    def pause(self, job: Job) -> None: ...

    def resume(self, job: Job) -> None: ...

    def delete(self, job: Job, pipelines: Sequence[PipelineCode]) -> None:
        """Remove the job and what it runs from the scheduler."""
        ...


@dataclass(frozen=True)
class JobTarget:
    """One scheduler a fabric kind exports its jobs to."""

    name: str
    """How ``job export --format`` names it."""
    export: Callable[[Job, Sequence[PipelineCode], str, dict[str, Any]], Export]
    """(job, its pipelines in order, the project's ref, the fabric's settings with its job sizes
    under ``job_sizes``) → the export."""
    connect: Callable[[Reach], Scheduler] | None = None
    """The scheduler, reached as the user; None where jobs are exported but not operated."""
    service_setting: str | None = None
    """The fabric setting that names the scheduler's own service (``airflow_fabric``: a fabric of
    kind ``service_kind``), for schedulers that are not the fabric itself."""
    service_kind: str | None = None
