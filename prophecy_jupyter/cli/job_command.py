"""``jupyter prophecy job``: scheduled jobs of a project (``jobs/<job>.yaml`` beside its
pipelines), created, listed, shown and removed in your working copy (commit and push them with
``jupyter prophecy project``); exported for, deployed to and operated on their fabric's scheduler
with your own credential."""

from __future__ import annotations

import argparse
import json
from typing import Any

from prophecy_jupyter.cli.context import services
from prophecy_jupyter.cli.options import key_values
from prophecy_jupyter.client.job_text import run_line


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
        description="From the pipelines' committed code. databricks fabrics: a Databricks Asset Bundle "
        "(databricks.yml, resources/<name>.job.yml); livy and local fabrics: an Airflow DAG "
        "(dags/<name>.py); snowflake fabrics: jobs/<name>.snowflake.sql (a stored procedure per "
        "pipeline, and tasks calling them on the job's schedule).",
    )
    export.add_argument("name")
    export.add_argument("--project", required=True)
    export.add_argument(
        "--format",
        choices=["bundle", "airflow", "snowflake"],
        help="Check that the job's fabric exports to it.",
    )
    export.set_defaults(handler=run_export)

    deploy = actions.add_parser(
        "deploy",
        help="Create or replace the job on its fabric's scheduler.",
        description="Exports the job from the pipelines' committed code, then deploys it with your own "
        "credential: on databricks fabrics, the code imported into the workspace and the job created "
        "or reset in place (found by its tags, never duplicated); on snowflake fabrics, the SQL, run "
        "in your session.",
    )
    deploy.add_argument("name")
    deploy.add_argument("--project", required=True)
    deploy.set_defaults(handler=run_deploy)

    run = actions.add_parser("run", help="Start a run of the deployed job now.")
    run.add_argument("name")
    run.add_argument("--project", required=True)
    run.add_argument(
        "--wait", action="store_true", help="Follow the run; print its final state, exit 1 unless SUCCESS."
    )
    run.add_argument("--timeout", type=float, default=3600, help="How long --wait waits, in seconds.")
    run.set_defaults(handler=run_run)

    runs = actions.add_parser("runs", help="The deployed job's recent runs: state, start, duration, error.")
    runs.add_argument("name")
    runs.add_argument("--project", required=True)
    runs.add_argument("--limit", type=int, default=10, help="How many (default 10).")
    runs.add_argument("--json", action="store_true", help="Print JSON.")
    runs.set_defaults(handler=run_runs)

    cancel = actions.add_parser("cancel", help="Cancel a run of the job (by default, every active run).")
    cancel.add_argument("name")
    cancel.add_argument("--project", required=True)
    cancel.add_argument("--run", metavar="ID", help="The run to cancel.")
    cancel.set_defaults(handler=run_cancel)

    for action, said in (("pause", "Pause the job's schedule."), ("resume", "Resume the job's schedule.")):
        toggle = actions.add_parser(action, help=said)
        toggle.add_argument("name")
        toggle.add_argument("--project", required=True)
        toggle.set_defaults(handler=run_pause if action == "pause" else run_resume)

    delete = actions.add_parser(
        "delete", help="Remove a job's file from your working copy (commit to remove it from the project)."
    )
    delete.add_argument("name")
    delete.add_argument("--project", required=True)
    delete.add_argument(
        "--remote", action="store_true", help="Also remove the job from its fabric's scheduler."
    )
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
    print(f"Job '{job.name}': {job.summary()}; {written}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    with services() as (built, user):
        jobs = built.jobs.list(user, args.project)
    if args.json:
        print(json.dumps([job.describe() for job in jobs], indent=2))
    elif not jobs:
        print(f"Project {args.project} has no jobs.")
    for job in [] if args.json else jobs:
        print(f"{job.name}: {job.summary()}")
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


def run_run(args: argparse.Namespace) -> int:
    with services() as (built, user):
        run_id = built.jobs.run_now(user, args.project, args.name)
        print(f"Started run {run_id} of job {args.name}.", flush=True)
        if not args.wait:
            return 0
        run = built.jobs.wait_for_run(user, args.project, args.name, run_id, args.timeout)
    print(run_line(run.describe()))
    print(run.state)
    return 0 if run.state == "SUCCESS" else 1


def run_runs(args: argparse.Namespace) -> int:
    with services() as (built, user):
        runs = [run.describe() for run in built.jobs.runs(user, args.project, args.name, args.limit)]
    if args.json:
        print(json.dumps(runs, indent=2))
    elif not runs:
        print(f"Job {args.name} has not run yet.")
    for run in [] if args.json else runs:
        print(run_line(run))
    return 0


def run_cancel(args: argparse.Namespace) -> int:
    with services() as (built, user):
        cancelled = built.jobs.cancel(user, args.project, args.name, args.run)
    print(f"Cancelled {', '.join(cancelled)}." if cancelled else f"Job {args.name} had no run to cancel.")
    return 0


def run_pause(args: argparse.Namespace) -> int:
    with services() as (built, user):
        print(built.jobs.pause(user, args.project, args.name))
    return 0


def run_resume(args: argparse.Namespace) -> int:
    with services() as (built, user):
        print(built.jobs.resume(user, args.project, args.name))
    return 0


def run_delete(args: argparse.Namespace) -> int:
    with services() as (built, user):
        removed, said = built.jobs.delete(user, args.project, args.name, args.remote)
    if said:
        print(said)
    print(f"Removed {', '.join(removed)} from your working copy; commit to remove it from the project.")
    return 0
