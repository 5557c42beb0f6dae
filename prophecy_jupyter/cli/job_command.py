"""``jupyter prophecy job``: scheduled jobs of a project (``jobs/<job>.yaml`` beside its
pipelines), created, listed, shown and removed in your working copy; commit and push them with
``jupyter prophecy project``."""

from __future__ import annotations

import argparse
import json
from typing import Any

from prophecy_jupyter.cli.context import services
from prophecy_jupyter.cli.options import key_values
from prophecy_jupyter.services.jobs import JobSpec


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "job",
        help="Scheduled jobs: a schedule for a project's pipelines on a fabric.",
        description="A job is jobs/<name>.yaml in a project: the pipelines it runs in order, the fabric, "
        "a 5-field cron in a time zone (or none: on demand), parameter values, retries, a timeout and "
        "who hears of failures. It is written into your working copy; commit and push it as a pipeline.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    create = actions.add_parser(
        "create",
        help="Write a job into your working copy.",
        description="Checked against the project's pipelines (their typed parameters) and the fabric "
        "(its kind and job sizes); a wrong field is named.",
    )
    create.add_argument("name", help="Job name: lower-case letters, digits, '-' and '_'.")
    create.add_argument("--project", required=True)
    create.add_argument(
        "--pipeline",
        action="append",
        required=True,
        dest="pipelines",
        metavar="PIPE",
        help="A pipeline of the project; several run in the order given.",
    )
    create.add_argument("--fabric", required=True, help="The fabric the pipelines run on.")
    create.add_argument(
        "--schedule", metavar="CRON", help='5-field cron, e.g. "0 2 * * *" (default: on demand).'
    )
    create.add_argument(
        "--timezone", metavar="TZ", default="UTC", help="IANA zone of the cron (default UTC)."
    )
    create.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE", help="A parameter value."
    )
    create.add_argument("--size", help="One of the fabric's job sizes.")
    create.add_argument("--retries", type=int, default=0, help="Retries of a failed run (default 0).")
    create.add_argument("--timeout-minutes", type=int, help="A run's time limit.")
    create.add_argument("--max-concurrent-runs", type=int, default=1, help="Default 1.")
    create.add_argument("--email", action="append", default=[], dest="emails", metavar="ADDR",
                        help="Who hears of failed runs (repeat for several).")  # fmt: skip
    create.add_argument("--replace", action="store_true", help="Replace a job of the same name.")
    create.set_defaults(handler=run_create)

    listing = actions.add_parser("list", help="The project's jobs in your working copy.")
    listing.add_argument("--project", required=True)
    listing.add_argument("--json", action="store_true", help="Print JSON.")
    listing.set_defaults(handler=run_list)

    show = actions.add_parser("show", help="A job, with its next run times.")
    show.add_argument("name")
    show.add_argument("--project", required=True)
    show.add_argument("--json", action="store_true", help="Print JSON.")
    show.set_defaults(handler=run_show)

    export = actions.add_parser(
        "export",
        help="Write the job as its fabric's scheduler takes it, beside the job.",
        description="From the pipelines' committed code: on snowflake fabrics, jobs/<name>.snowflake.sql "
        "(a stored procedure per pipeline, and tasks calling them on the job's schedule).",
    )
    export.add_argument("name")
    export.add_argument("--project", required=True)
    export.add_argument("--format", choices=["snowflake"], help="Check that the job's fabric exports to it.")
    export.set_defaults(handler=run_export)

    deploy = actions.add_parser(
        "deploy",
        help="Create or replace the job on its fabric's scheduler.",
        description="Exports the job from the pipelines' committed code, then deploys it with your own "
        "credential (on snowflake fabrics: the SQL, run in your session).",
    )
    deploy.add_argument("name")
    deploy.add_argument("--project", required=True)
    deploy.set_defaults(handler=run_deploy)

    delete = actions.add_parser(
        "delete", help="Remove a job's file from your working copy (commit to remove it from the project)."
    )
    delete.add_argument("name")
    delete.add_argument("--project", required=True)
    delete.set_defaults(handler=run_delete)


def run_create(args: argparse.Namespace) -> int:
    data: dict[str, Any] = {
        "name": args.name,
        "pipelines": args.pipelines,
        "fabric": args.fabric,
        "schedule": {"cron": args.schedule, "timezone": args.timezone} if args.schedule else None,
        "parameters": key_values(args.param, "--param"),
        "size": args.size,
        "retries": args.retries,
        "timeout_minutes": args.timeout_minutes,
        "max_concurrent_runs": args.max_concurrent_runs,
        "emails": args.emails,
    }
    with services() as (built, user):
        job, changed = built.jobs.create(user, args.project, data, args.replace)
    written = f"changed {', '.join(changed)}." if changed else "no changes."
    print(f"Job '{job.name}': {', '.join(job.pipelines)} on {job.fabric}, {_when(job)}; {written}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    with services() as (built, user):
        jobs = built.jobs.list(user, args.project)
    if args.json:
        print(json.dumps([job.describe() for job in jobs], indent=2))
    elif not jobs:
        print(f"Project {args.project} has no jobs.")
    for job in [] if args.json else jobs:
        print(f"{job.name}: {', '.join(job.pipelines)} on {job.fabric}, {_when(job)}")
    return 0


def run_show(args: argparse.Namespace) -> int:
    with services() as (built, user):
        job = built.jobs.get(user, args.project, args.name)
    described = job.describe()
    if args.json:
        print(json.dumps(described, indent=2))
        return 0
    path, content = job.file()
    print(f"{path}:\n{content.decode()}")
    if described["next_runs"]:
        print("Next runs: " + ", ".join(described["next_runs"]))
    return 0


def run_export(args: argparse.Namespace) -> int:
    with services() as (built, user):
        exported, changed, target = built.jobs.export(user, args.project, args.name, args.format)
    written = ", ".join(exported.files)
    print(f"Job '{args.name}' as {target}: {written}" + ("" if changed else " (no changes)") + ".")
    return 0


def run_deploy(args: argparse.Namespace) -> int:
    with services() as (built, user):
        print(built.jobs.deploy(user, args.project, args.name))
    return 0


def run_delete(args: argparse.Namespace) -> int:
    with services() as (built, user):
        removed = built.jobs.delete(user, args.project, args.name)
    print(f"Removed {', '.join(removed)} from your working copy; commit to remove it from the project.")
    return 0


def _when(job: JobSpec) -> str:
    schedule = job.schedule
    return f"{schedule.cron} ({schedule.timezone})" if schedule else "on demand"
