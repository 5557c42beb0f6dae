"""``%job``: scheduled jobs of the notebook's project, with the notebook's pipeline and fabric as
defaults."""

from __future__ import annotations

import argparse
import time
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import line_magic, magics_class

from prophecy_jupyter.client.job_text import run_line
from prophecy_jupyter.magics.pipeline_magics import ProjectMagics
from prophecy_jupyter.schedulers.base import ENDED

JOB_USAGE = """Usage:
  %job create NAME [--pipeline PIPE]... [--fabric F] [--schedule "CRON"] [--timezone TZ]
       [--param NAME=VALUE]... [--size SIZE] [--retries N] [--timeout-minutes N]
       [--max-concurrent-runs N] [--email ADDR]... [--replace]
                       write a job into your working copy (commit it with %pipeline commit)
  %job list            the project's jobs
  %job show NAME       a job and its next run times
  %job delete NAME     remove a job's file from your working copy
  %job export NAME [--format bundle|airflow|snowflake]
                       write it as its fabric's scheduler takes it, beside the job
  %job deploy NAME     create it on the fabric's scheduler, or update it in place, as you
  %job run NAME [--wait]
                       start a run now; --wait follows it to its final state
  %job runs NAME       recent runs: state, start, duration, the scheduler's error, a link
  %job cancel NAME [--run ID]
                       cancel a run (by default, every active run)
  %job pause NAME      pause the schedule; %job resume NAME resumes it
  %job delete NAME [--remote]
                       remove a job's file from your working copy (--remote: and from the scheduler)
Every command takes --project PROJECT (default: the notebook's, or your only one). create's
defaults: the pipeline named after this notebook, the notebook's fabric, on demand, UTC."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise UsageError(f"{message}\n{JOB_USAGE}")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="%job", add_help=False)
    commands = [
        "create",
        "list",
        "show",
        "delete",
        "export",
        "deploy",
        "run",
        "runs",
        "cancel",
        "pause",
        "resume",
    ]
    parser.add_argument("command", choices=commands)
    parser.add_argument("name", nargs="?")
    parser.add_argument("--project")
    parser.add_argument("--pipeline", action="append", dest="pipelines")
    parser.add_argument("--fabric")
    parser.add_argument("--schedule")
    parser.add_argument("--timezone", default="UTC")
    parser.add_argument("--param", action="append", default=[])
    parser.add_argument("--size")
    parser.add_argument("--retries", type=int, default=0)
    parser.add_argument("--timeout-minutes", type=int)
    parser.add_argument("--max-concurrent-runs", type=int, default=1)
    parser.add_argument("--email", action="append", default=[], dest="emails")
    parser.add_argument("--replace", action="store_true")
    parser.add_argument("--format", choices=["bundle", "airflow", "snowflake"])
    parser.add_argument("--wait", action="store_true")
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--run", dest="run_id")
    parser.add_argument("--remote", action="store_true")
    parser.add_argument("--limit", type=int, default=10)
    return parser


@magics_class
class JobMagics(ProjectMagics):
    usage = JOB_USAGE

    @line_magic
    def job(self, line: str) -> None:
        """Create, list, show, export, deploy and operate the project's jobs: see ``%job help``."""
        self.dispatch(line, _parser())

    def check(self, args: argparse.Namespace) -> None:
        if args.command != "list" and not args.name:
            raise UsageError(f"%job {args.command} needs the job's NAME\n{JOB_USAGE}")

    def _create(self, project: str, args) -> None:
        answer = self.backend.create_job(project, self._spec(args), args.replace)
        job, changed = answer["job"], answer["changed"]
        written = (
            f"changed {', '.join(changed)}; `%pipeline commit` to keep it." if changed else "no changes."
        )
        print(f"Job '{job['name']}': {job['summary']}; {written}")

    def _spec(self, args) -> dict[str, Any]:
        pipelines = args.pipelines or [self._notebook_pipeline()]
        fabric = args.fabric or self.fabric_magics.attached
        if fabric is None:
            raise UsageError("Which fabric? Use --fabric NAME, or attach one to this notebook first.")
        parameters = {}
        for pair in args.param:
            key, sep, value = pair.partition("=")
            if not sep or not key.strip():
                raise UsageError(f"--param takes NAME=VALUE, not {pair!r}")
            parameters[key.strip()] = value
        return {
            "name": args.name,
            "pipelines": pipelines,
            "fabric": fabric,
            "schedule": {"cron": args.schedule, "timezone": args.timezone} if args.schedule else None,
            "parameters": parameters,
            "size": args.size,
            "retries": args.retries,
            "timeout_minutes": args.timeout_minutes,
            "max_concurrent_runs": args.max_concurrent_runs,
            "emails": args.emails,
        }

    def _notebook_pipeline(self) -> str:
        path = self.fabric_magics.notebook_path
        if path is None:
            raise UsageError("Which pipeline? Use --pipeline NAME (this kernel does not know its notebook).")
        return path.stem

    def _list(self, project: str, args) -> None:
        jobs = self.backend.jobs(project)
        if not jobs:
            print(f"Project {project} has no jobs yet (`%job create NAME`).")
        for job in jobs:
            print(f"{job['name']}: {job['summary']}")

    def _show(self, project: str, args) -> None:
        job = self.backend.job(project, args.name)
        print(f"{job['name']}: {job['summary']}")
        if job["parameters"]:
            print("Parameters: " + ", ".join(f"{k}={v!r}" for k, v in job["parameters"].items()))
        if job["next_runs"]:
            print("Next runs: " + ", ".join(job["next_runs"]))

    def _delete(self, project: str, args) -> None:
        answer = self.backend.delete_job(project, args.name, args.remote)
        if answer["message"]:
            print(answer["message"])
        removed = ", ".join(answer["removed"])
        print(f"Removed {removed} from your working copy; `%pipeline commit` to remove it.")

    def _export(self, project: str, args) -> None:
        answer = self.backend.export_job(project, args.name, args.format)
        print(f"Job '{args.name}' as {answer['format']}: {', '.join(answer['files'])}.")

    def _deploy(self, project: str, args) -> None:
        print(self.backend.deploy_job(project, args.name))

    def _run(self, project: str, args) -> None:
        run_id = self.backend.run_job(project, args.name)
        print(f"Started run {run_id} of job {args.name}.", flush=True)
        if not args.wait:
            return
        deadline = time.monotonic() + args.timeout
        while True:
            run = next((r for r in self.backend.job_runs(project, args.name) if r["run_id"] == run_id), None)
            if run is not None and run["state"] in ENDED:
                print(run_line(run))
                print(run["state"])
                return
            if time.monotonic() > deadline:
                state = run["state"] if run else "not listed yet"
                raise UsageError(f"Run {run_id} did not end within {args.timeout:.0f} s (it is {state}).")
            time.sleep(2)

    def _runs(self, project: str, args) -> None:
        runs = self.backend.job_runs(project, args.name, args.limit)
        if not runs:
            print(f"Job {args.name} has not run yet.")
        for run in runs:
            print(run_line(run))

    def _cancel(self, project: str, args) -> None:
        cancelled = self.backend.cancel_job(project, args.name, args.run_id)
        print(f"Cancelled {', '.join(cancelled)}." if cancelled else f"Job {args.name} had no run to cancel.")

    def _pause(self, project: str, args) -> None:
        print(self.backend.pause_job(project, args.name))

    def _resume(self, project: str, args) -> None:
        print(self.backend.resume_job(project, args.name))
