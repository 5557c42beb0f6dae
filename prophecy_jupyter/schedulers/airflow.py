"""``AirflowScheduler`` deploys and operates the job on the ``airflow`` fabric that the livy fabric
names (``airflow_fabric``), as the user, through Airflow 3's REST API v2: the DAG file (and the
pipelines' code) is written into that fabric's ``dags_folder``, and runs are started, listed,
stopped (Airflow has no cancel: a run is marked failed), paused, resumed and removed there."""

from __future__ import annotations

import contextlib
import datetime
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

from prophecy_jupyter.errors import AuthenticationError, EngineError, Invalid
from prophecy_jupyter.schedulers.airflow_api import AirflowApi, error_detail, parse_time
from prophecy_jupyter.schedulers.airflow_dags import FILE_NAME, code_location, dag_id, export
from prophecy_jupyter.schedulers.base import ENDED, Export, Job, JobTarget, PipelineCode, Reach, Run

PARSE_TIMEOUT = 60.0
"""How long deploy waits for Airflow's DAG processor to parse the DAG file."""
CATCHING_UP = (
    "Airflow starts one run now for the latest scheduled time already past (it does when a DAG "
    "without catch-up is created or resumed)"
)
CANCELLED = "Cancelled with prophecy-jupyter"
"""The note a cancelled run carries (Airflow has no cancelled state: the run is marked failed)."""
DELETE_ATTEMPTS = 3
"""How many times removing a DAG is tried (Airflow refuses while one of its tasks still runs)."""
_RUN_STATES = {"queued": "PENDING", "running": "RUNNING", "success": "SUCCESS", "failed": "FAILED"}
_ACTIVE = ("queued", "running")
LOG_TAIL_LINES = 40
_CHATTER = re.compile(r"^\S+ \S+ (INFO|DEBUG|TRACE) ")
"""Spark's (log4j's) informational lines in a batch's log, left out of a run's error."""
ERROR_MAX_CHARS = 4000
IGNORE_FILE = b"""# Written by prophecy-jupyter: the pipelines' code this folder's DAG submits to Livy, not
# DAG files; Airflow's DAG processor skips it all (glob syntax, Airflow 3's default).
*
"""


def write_atomically(path: Path, content: bytes) -> None:
    """Write ``path`` whole or not at all (a temporary file beside it, renamed over it), readable
    by Airflow's processes."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


class AirflowScheduler:
    """A job's DAG on the airflow fabric that its livy fabric names (``airflow_fabric``), operated
    as the user through Airflow's REST API v2.

    - ``deploy`` writes the exported DAG file into the airflow fabric's ``dags_folder`` (a folder
      this server shares with Airflow's DAG processor) as ``<dag_id>.py``, and, unless the livy
      fabric reads code from a ``code_location``, each pipeline's committed code beside it in
      ``<dag_id>/pipelines/<pipeline>/pipeline.py`` (with a ``.airflowignore``: the processor
      never imports it). Files are written whole (renamed into place); deploying again replaces
      them (one DAG). It then waits, bounded, for Airflow to parse the DAG, reports the import
      error Airflow gives for it, and resumes the DAG if it was paused (so does Databricks' deploy).
    - ``run_now`` triggers a run with an id chosen here (the request is never sent twice: a broken
      connection is checked against that id). A paused DAG starts no run, not even a triggered one:
      an on-demand job's DAG is resumed first; a paused scheduled job is refused until resumed.
    - Airflow has no cancel: ``cancel`` marks the run failed (with a note that says it was
      cancelled, which ``runs`` reads back as CANCELED). Its running tasks are failed with it; their
      processes are then stopped by Airflow, and ``LivyOperator.on_kill`` deletes the Livy batch.
    - ``delete`` removes the DAG file and its code folder, then the DAG's metadata in Airflow."""

    parse_timeout = PARSE_TIMEOUT
    poll_seconds = 1.0

    def __init__(self, reach: Reach):
        if reach.service is None:
            raise Invalid(f"Fabric {reach.fabric} names no airflow fabric (airflow_fabric).", "fabric")
        self.reach = reach
        self.service = reach.service
        self.api = AirflowApi(reach.service.settings, reach.service.secret, reach.service.ref)

    # -- the DAG's files --------------------------------------------------------------------

    def _dags_folder(self, job: Job, doing: str) -> Path:
        folder = self.service.settings.get("dags_folder")
        if not folder:
            raise Invalid(
                f"Airflow fabric {self.service.ref} has no dags_folder, so this server cannot {doing} the "
                f"DAG of job {job.name}: your team's own process puts dags/{job.name}.py (from `job export`) "
                "and the pipelines' code into Airflow's DAG folder, or set the airflow fabric's dags_folder "
                "(a folder this server shares with Airflow's DAG processor).",
                "dags_folder",
            )
        path = Path(folder)
        if not path.is_dir():
            raise EngineError(
                f"The dags_folder of Airflow fabric {self.service.ref}, {folder}, is not a folder on this "
                "server: mount the folder Airflow's DAG processor reads there."
            )
        return path

    def _write_code(self, folder: Path, pipelines: Sequence[PipelineCode]) -> None:
        """Each pipeline's ``pipeline.py`` under ``folder/pipelines``; no other pipeline is left."""
        code = folder / "pipelines"
        code.mkdir(parents=True, exist_ok=True)
        write_atomically(folder / ".airflowignore", IGNORE_FILE)
        names = set()
        for pipeline in pipelines:
            if not FILE_NAME.match(pipeline.name):
                raise Invalid(f"Pipeline name {pipeline.name!r} cannot name a folder.", "pipelines")
            names.add(pipeline.name)
            (code / pipeline.name).mkdir(exist_ok=True)
            write_atomically(code / pipeline.name / "pipeline.py", pipeline.source.encode())
        for old in code.iterdir():
            if old.name not in names:
                shutil.rmtree(old) if old.is_dir() else old.unlink()

    def deploy(self, job: Job, pipelines: Sequence[PipelineCode], export: Export) -> str:
        """Write the DAG (and the pipelines' code) into the dags folder, wait for Airflow to parse
        it, and make sure it is not paused; what was done."""
        folder = self._dags_folder(job, "deploy")
        dag = dag_id(self.reach.project, job.name)
        path = f"/api/v2/dags/{quote(dag, safe='')}"
        text = export.files[f"dags/{job.name}.py"]
        before = self.api.call("GET", path, "read the DAG", missing_ok=True)
        # Airflow checks the user's right to change this DAG on this PATCH before anything is written,
        # even for a DAG it does not know yet (403; 404 for a new one); resuming is deploy's own.
        self.api.call(
            "PATCH",
            path,
            "deploy the DAG",
            body={"is_paused": False},
            params={"update_mask": "is_paused"},
            missing_ok=True,
        )
        errors_before = self._import_errors(dag)
        location = code_location(self.reach.settings)
        if location is None:
            self._write_code(folder / dag, pipelines)
            said = [f"wrote DAG {dag} and the code of {len(pipelines)} pipeline(s) to {folder}"]
        else:
            shutil.rmtree(folder / dag, ignore_errors=True)  # code of an earlier deploy, if any
            said = [
                f"wrote DAG {dag} to {folder} (Livy reads the pipelines from {location}/pipelines/: copy "
                "their committed pipeline.py there)"
            ]
        write_atomically(folder / f"{dag}.py", text)
        if before and before.get("is_paused"):
            said.append("it was paused: resumed")
        waited = self._wait_until_parsed(
            dag, text.decode(), errors_before, (before or {}).get("last_parsed_time")
        )
        if waited is None:
            said.append(
                f"Airflow had not parsed it after {self.parse_timeout:.0f} s (its DAG processor looks for "
                "new files every [dag_processor] refresh_interval seconds): the DAG appears then, unpaused"
            )
            return "; ".join(said)
        said.append(f"Airflow parsed it in {waited:.0f} s")
        found = self.api.call("GET", path, "read the DAG", missing_ok=True)
        if found and found.get("is_paused"):  # created paused all the same
            self._patch_dag(job, dag, False)
        schedule = job.schedule
        said.append(
            f"it runs on '{schedule.cron}' ({schedule.timezone})" if schedule else "it runs on demand"
        )
        if schedule and (before is None or before.get("is_paused")):
            said.append(CATCHING_UP)
        return "; ".join(said)

    def _import_errors(self, dag: str) -> dict[Any, tuple[Any, str]]:
        """Airflow's import errors of the DAG's file: id → (time, stack trace)."""
        found = self.api.call(
            "GET",
            "/api/v2/importErrors",
            "list import errors",
            params={"order_by": "-timestamp", "limit": 100},
        )
        return {
            error.get("import_error_id"): (error.get("timestamp"), str(error.get("stack_trace") or ""))
            for error in (found or {}).get("import_errors") or []
            if Path(str(error.get("filename") or "")).name == f"{dag}.py"
        }

    def _last_parsed(self, dag: str) -> str | None:
        found = self.api.call("GET", f"/api/v2/dags/{quote(dag, safe='')}", "read the DAG", missing_ok=True)
        return (found or {}).get("last_parsed_time")

    def _wait_until_parsed(
        self, dag: str, text: str, errors_before: dict[Any, tuple[Any, str]], parsed_before: str | None
    ) -> float | None:
        """Seconds until Airflow holds the DAG as written (its stored source is the file's, or the
        file was parsed twice since: an unchanged DAG keeps its stored source); None when the wait
        ran out; EngineError with Airflow's import error of the file."""
        started = time.monotonic()
        parses: set[str] = set()
        while True:
            source = self.api.call(
                "GET", f"/api/v2/dagSources/{quote(dag, safe='')}", "read the DAG's source", missing_ok=True
            )
            if source is not None and source.get("content") == text:
                return time.monotonic() - started
            parsed = self._last_parsed(dag)
            if parsed and parsed != parsed_before:
                parses.add(parsed)
                if len(parses) >= 2:
                    return time.monotonic() - started
            fresh = [
                trace
                for key, (when, trace) in self._import_errors(dag).items()
                if errors_before.get(key) != (when, trace)
            ]
            if fresh:
                lines = fresh[0].strip().splitlines()
                raise EngineError(
                    f"Airflow fabric {self.service.ref} could not import DAG {dag}: " + "\n".join(lines[-15:])
                )
            if time.monotonic() - started > self.parse_timeout:
                return None
            time.sleep(self.poll_seconds)

    # -- runs -------------------------------------------------------------------------------

    def _dag(self, job: Job) -> dict[str, Any]:
        dag = dag_id(self.reach.project, job.name)
        found = self.api.call("GET", f"/api/v2/dags/{quote(dag, safe='')}", "read the DAG", missing_ok=True)
        if found is None:
            raise self._not_deployed(job)
        return found

    def _not_deployed(self, job: Job) -> Invalid:
        return Invalid(
            f"Job {job.name} is not deployed to Airflow fabric {self.service.ref} (or Airflow has not "
            "parsed its DAG yet): deploy it first.",
            "job",
        )

    def _patch_dag(self, job: Job, dag: str, paused: bool) -> None:
        found = self.api.call(
            "PATCH",
            f"/api/v2/dags/{quote(dag, safe='')}",
            "pause the DAG" if paused else "resume the DAG",
            body={"is_paused": paused},
            missing_ok=True,
        )
        if found is None:
            raise self._not_deployed(job)

    def run_now(self, job: Job) -> str:
        """Trigger a run (its id chosen here; a request that may have arrived is not sent again)."""
        dag = self._dag(job)
        dag_name = dag["dag_id"]
        if dag.get("is_paused"):
            if job.schedule is not None:
                raise Invalid(
                    f"Job {job.name} is paused on Airflow fabric {self.service.ref}, and Airflow starts no "
                    "run of a paused DAG, not even one started by hand: resume it first.",
                    "schedule",
                )
            self._patch_dag(job, dag_name, False)  # an on-demand DAG has nothing to pause
        now = datetime.datetime.now(datetime.UTC)
        run_id = f"manual__{now:%Y%m%dT%H%M%S}__prophecy_{uuid.uuid4().hex[:8]}"
        path = f"/api/v2/dags/{quote(dag_name, safe='')}/dagRuns"
        try:
            response = self.api.send(
                "POST", path, "start a run", {"dag_run_id": run_id, "logical_date": None}
            )
        except requests.RequestException as exc:
            arrived = self.api.call(
                "GET", f"{path}/{quote(run_id, safe='')}", "read the run", missing_ok=True
            )
            if arrived is not None:
                return run_id
            raise EngineError(
                f"The connection to Airflow fabric {self.service.ref} broke while it was asked to start a "
                f"run of job {job.name} ({type(exc).__name__}), and no run {run_id} is there; it was not "
                "sent again, so that nothing runs twice."
            ) from None
        if response.status_code in (401, 403):
            raise AuthenticationError(
                f"Airflow fabric {self.service.ref} refused to start a run of job {job.name} (HTTP "
                f"{response.status_code}: {self.api.scrub(error_detail(response))})."
            )
        if response.status_code >= 400:
            raise EngineError(
                f"Airflow fabric {self.service.ref} did not start a run of job {job.name} (HTTP "
                f"{response.status_code}: {self.api.scrub(error_detail(response))})."
            )
        return str(self.api.decode(response, "POST", path).get("dag_run_id") or run_id)

    def _listed(self, job: Job, limit: int) -> list[dict[str, Any]]:
        dag = dag_id(self.reach.project, job.name)
        found = self.api.call(
            "GET",
            f"/api/v2/dags/{quote(dag, safe='')}/dagRuns",
            "list the DAG's runs",
            params={"order_by": "-id", "limit": max(1, min(limit, 100))},
            missing_ok=True,
        )
        if found is None:
            raise self._not_deployed(job)
        return list(found.get("dag_runs") or [])[:limit]

    def runs(self, job: Job, limit: int) -> list[Run]:
        """Recent runs, newest first; a failed run's error is its failed task's log, ending."""
        return [self._run(found) for found in self._listed(job, limit)]

    def _run(self, found: dict[str, Any]) -> Run:
        dag, run_id = str(found["dag_id"]), str(found["dag_run_id"])
        state = _RUN_STATES.get(str(found.get("state")), "PENDING")
        error = None
        if state == "FAILED" and str(found.get("note") or "").startswith(CANCELLED):
            state = "CANCELED"
        elif state == "FAILED":
            error = self._error(dag, run_id)
            if error and "AirflowTaskTimeout" in error:
                state = "TIMEDOUT"
        return Run(
            run_id=run_id,
            state=state,
            started=parse_time(found.get("start_date")),
            ended=parse_time(found.get("end_date")) if state in ENDED else None,
            error=error,
            link=f"{self.api.url}/dags/{quote(dag, safe='')}/runs/{quote(run_id, safe='')}",
        )

    def _error(self, dag: str, run_id: str) -> str | None:
        """The first failed task and the end of its log (where the pipeline's error is)."""
        base = f"/api/v2/dags/{quote(dag, safe='')}/dagRuns/{quote(run_id, safe='')}/taskInstances"
        try:
            listed = self.api.call("GET", base, "list the run's tasks", missing_ok=True) or {}
            failed = [ti for ti in listed.get("task_instances") or [] if ti.get("state") == "failed"]
            if not failed:
                return None
            task = min(failed, key=lambda ti: str(ti.get("end_date") or ""))
            task_id, attempt = str(task["task_id"]), int(task.get("try_number") or 1)
            log = self.api.call(
                "GET",
                f"{base}/{quote(task_id, safe='')}/logs/{attempt}",
                "read the task's log",
                params={"full_content": "true"},
                missing_ok=True,
            )
        except EngineError as exc:  # the state still says it failed
            return f"(its error could not be read: {exc})"
        lines = [line for line in _log_lines((log or {}).get("content") or []) if not _CHATTER.match(line)]
        tracebacks = [
            i for i, line in enumerate(lines) if line.startswith("Traceback (most recent call last)")
        ]
        start = tracebacks[-1] if tracebacks else len(lines) - LOG_TAIL_LINES  # the pipeline's error
        tail = "\n".join(lines[max(0, start) :])[-ERROR_MAX_CHARS:]
        return f"{task_id}: {self.api.scrub(tail)}" if tail else f"{task_id} failed"

    def cancel(self, job: Job, run_id: str | None) -> list[str]:
        """Airflow has no cancel: each active run (or ``run_id``) is marked failed, with a note
        that it was cancelled. Its running tasks fail with it, Airflow stops their processes, and
        the Livy operator deletes its batch (``on_kill``)."""
        active = [
            str(found["dag_run_id"]) for found in self._listed(job, 100) if found.get("state") in _ACTIVE
        ]
        if run_id is not None:
            if run_id not in active:
                raise Invalid(f"Run {run_id} of job {job.name} is not running.", "run")
            active = [run_id]
        dag = dag_id(self.reach.project, job.name)
        note = f"{CANCELLED}: Airflow has no cancel, so the run was marked failed."
        for found in active:
            self.api.call(
                "PATCH",
                f"/api/v2/dags/{quote(dag, safe='')}/dagRuns/{quote(found, safe='')}",
                f"stop run {found}",
                body={"state": "failed", "note": note},
            )
        return active

    def pause(self, job: Job) -> None:
        self._pause(job, True)

    def resume(self, job: Job) -> None:
        self._pause(job, False)

    def _pause(self, job: Job, paused: bool) -> None:
        if job.schedule is None:
            raise Invalid(
                f"Job {job.name} runs on demand: it has no schedule to pause or resume.", "schedule"
            )
        self._patch_dag(job, dag_id(self.reach.project, job.name), paused)

    def delete(self, job: Job, pipelines: Sequence[PipelineCode]) -> None:
        """Remove the DAG file and its code folder, then the DAG's metadata (runs, history) from
        Airflow; nothing left is not an error. Runs still going are cancelled first, as ``job
        cancel`` does: their code is gone, and Airflow refuses to remove a DAG with running tasks."""
        folder = self._dags_folder(job, "remove")
        dag = dag_id(self.reach.project, job.name)
        with contextlib.suppress(FileNotFoundError):
            (folder / f"{dag}.py").unlink()
        shutil.rmtree(folder / dag, ignore_errors=True)
        path = f"/api/v2/dags/{quote(dag, safe='')}"
        for attempt in range(1, DELETE_ATTEMPTS + 1):
            try:
                with contextlib.suppress(Invalid):  # Airflow does not know the DAG: nothing runs
                    self.cancel(job, None)
                self.api.call("DELETE", path, "remove the DAG", missing_ok=True)
                # A parse that read the file before it went, or a run the scheduler had just
                # started, may bring the DAG back just after: once more, until it stays gone.
                time.sleep(self.poll_seconds)
                if self.api.call("GET", path, "read the DAG", missing_ok=True) is None:
                    return
            except AuthenticationError:
                raise
            except EngineError as exc:
                if attempt == DELETE_ATTEMPTS:
                    raise EngineError(
                        f"{exc} Its files are removed from the dags folder; delete it again."
                    ) from None
                time.sleep(self.poll_seconds)
        raise EngineError(
            f"Airflow fabric {self.reach.fabric} still lists DAG {dag} after {DELETE_ATTEMPTS} "
            "removals. Its files are removed from the dags folder; delete it again."
        )


def _log_lines(content: list[Any]) -> list[str]:
    """A task log's lines: Airflow 3 gives structured events (with an exception's details), or
    plain lines."""
    lines: list[str] = []
    for entry in content:
        if not isinstance(entry, dict):
            lines.extend(str(entry).splitlines())
            continue
        event = str(entry.get("event") or "")
        if event and not event.startswith("::"):  # ::group:: markers of the UI
            lines.extend(event.splitlines())
        for detail in entry.get("error_detail") or []:
            if isinstance(detail, dict):
                lines.append(f"{detail.get('exc_type')}: {detail.get('exc_value')}")
    return lines


def connect(reach: Reach) -> AirflowScheduler:
    return AirflowScheduler(reach)


AIRFLOW = JobTarget(
    name="airflow", export=export, connect=connect, service_setting="airflow_fabric", service_kind="airflow"
)
