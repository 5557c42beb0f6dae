"""What every job target is given: the job, and each of its pipelines' code and typed parameters."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


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
class Operations:
    """A deployed job's operations on a scheduler that takes statements (Snowflake's): for each,
    what runs in the user's session."""

    run_now: Callable[[Job], list[str]]
    pause: Callable[[Job], list[str]]
    resume: Callable[[Job], list[str]]
    delete: Callable[[Job, Sequence[PipelineCode], str], list[str]]
    """(job, its pipelines, the project's ref) → statements that remove the job and what it runs."""
    runs: Callable[[Job, int], str]
    """(job, how many) → a query of its recent runs, newest first, with the columns RUN_ID, STATE,
    STARTED, ENDED, ERROR (what the scheduler reported) and RESULT (what the run returned)."""


@dataclass(frozen=True)
class JobTarget:
    """One scheduler a fabric kind exports its jobs to."""

    name: str
    """How ``job export --format`` names it."""
    export: Callable[[Job, Sequence[PipelineCode], str, dict[str, Any]], Export]
    """(job, its pipelines in order, the project's ref, the fabric's settings) → the export."""
    operations: Operations | None = None
