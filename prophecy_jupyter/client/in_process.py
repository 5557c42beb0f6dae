"""The session service in the kernel's own process, for a kernel that no server with
prophecy-jupyter started (or an older server): the same answers as the server's API gives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prophecy_jupyter.client.backend import Notify, fabric_row
from prophecy_jupyter.environment import local_username, services_of_this_process
from prophecy_jupyter.results.model import Result
from prophecy_jupyter.services.sessions import Run, TableRun, table_result
from prophecy_jupyter.sql_parameters import SqlParameter


class InProcessBackend:
    """A session service in the kernel's own process (no Jupyter server, or an older one)."""

    def __init__(self):
        self.user = local_username()
        self.services = services_of_this_process(self.user)

    @property
    def sessions(self):
        return self.services.sessions

    def fabrics(self) -> list[dict[str, Any]]:
        return [fabric_row(f.to_json()) for f in self.services.fabrics.list(self.user)]

    def attach(self, notebook: str, fabric: str) -> dict[str, Any]:
        chosen = self.services.fabrics.get(self.user, fabric)
        self.services.attachments.attach(self.user, notebook, chosen.ref)
        if chosen.kind_of.warm_on_attach:
            # Nothing to pay for, and the session's start is then out of the first cell's way.
            self.sessions.start_in_background(self.user, notebook, chosen.ref)
        return fabric_row(chosen.to_json())

    def attachment(self, notebook: str) -> str | None:
        return self.services.attachments.get(self.user, notebook)

    def detach(self, notebook: str, fabric: str) -> int:
        self.services.attachments.detach(self.user, notebook)
        return self.sessions.close(self.user, notebook, fabric)

    def has_session(self, notebook: str, fabric: str) -> bool:
        return any(m.fabric.ref == fabric and m.live for m in self.sessions.sessions_of(self.user, notebook))

    def run(self, notebook: str, fabric: str, code: str, language: str, notify: Notify) -> Run:
        return self.sessions.submit(self.user, notebook, fabric, code, language, notify)

    def table(self, notebook: str, fabric: str, source: str, limit: int, notify: Notify) -> TableRun:
        return self.sessions.submit_table(self.user, notebook, fabric, source, limit, True, notify)

    def sql_table(
        self,
        notebook: str,
        fabric: str,
        query: str,
        parameters: list[SqlParameter],
        limit: int,
        notify: Notify,
    ) -> TableRun:
        return self.sessions.submit_sql(self.user, notebook, fabric, query, limit, parameters, notify)

    def send(
        self,
        notebook: str,
        fabric: str,
        data: bytes,
        name: str,
        *,
        key: str,
        part: int,
        last: bool,
        view: bool,
        notify: Notify,
    ) -> Run:
        return self.sessions.submit_send(
            self.user, notebook, fabric, data, name, key=key, part=part, last=last, view=view, notify=notify
        )

    def frame(self, run: Run) -> Result:
        return table_result(run)

    def cancel(self, run: Run) -> None:
        self.sessions.cancel(run)

    def configure(self, notebook: str, fabric: str, settings: dict, notify: Notify) -> bool:
        return self.sessions.configure(self.user, notebook, fabric, settings, notify)

    def restart(self, notebook: str, fabric: str, notify: Notify) -> None:
        self.sessions.restart(self.sessions.managed(self.user, notebook, fabric), notify)

    def cluster(self, fabric: str) -> dict[str, str]:
        return self.services.clusters.state(self.user, fabric)

    def start_cluster(self, fabric: str) -> dict[str, str]:
        return self.services.clusters.start(self.user, fabric)

    def status(self, notebook: str) -> list[dict[str, Any]]:
        return self.sessions.status(self.user, notebook)

    def logs(self, notebook: str, fabric: str, size: int) -> list[str]:
        return self.sessions.logs(self.sessions.managed(self.user, notebook, fabric), size)

    def complete(self, notebook: str, fabric: str, code: str, cursor: int) -> list[str]:
        return self.sessions.complete(self.user, notebook, fabric, code, cursor)

    def projects(self) -> list[dict[str, Any]]:
        return [p.to_json() for p in self.services.projects.list(self.user)]

    def generate_pipeline(self, project: str, notebook: str, name: str | None) -> dict[str, Any]:
        return self.services.notebooks.generate_pipeline(
            self.user, project, notebook, Path(notebook), name
        ).to_json()

    def project_status(self, project: str) -> dict[str, Any]:
        return self.services.projects.status(self.user, project)

    def project_diff(self, project: str) -> str:
        return self.services.projects.diff(self.user, project)

    def project_commit(self, project: str, message: str) -> str | None:
        return self.services.projects.commit(self.user, project, message)

    def project_push(self, project: str) -> str:
        return self.services.projects.push(self.user, project)

    def project_pull(self, project: str) -> str:
        return self.services.projects.pull(self.user, project)

    def jobs(self, project: str) -> list[dict[str, Any]]:
        return [job.describe() for job in self.services.jobs.list(self.user, project)]

    def job(self, project: str, name: str) -> dict[str, Any]:
        return self.services.jobs.get(self.user, project, name).describe()

    def create_job(self, project: str, job: dict[str, Any], replace: bool) -> dict[str, Any]:
        created, changed = self.services.jobs.create(self.user, project, job, replace)
        return {"job": created.describe(), "changed": changed}

    def delete_job(self, project: str, name: str, remote: bool = False) -> dict[str, Any]:
        removed, message = self.services.jobs.delete(self.user, project, name, remote)
        return {"removed": removed, "message": message}

    def export_job(self, project: str, name: str, format: str | None = None) -> dict[str, Any]:
        exported, changed, target = self.services.jobs.export(self.user, project, name, format)
        return {
            "format": target,
            "files": {p: c.decode() for p, c in exported.files.items()},
            "changed": changed,
        }

    def deploy_job(self, project: str, name: str) -> str:
        return self.services.jobs.deploy(self.user, project, name)

    def run_job(self, project: str, name: str) -> str:
        return self.services.jobs.run_now(self.user, project, name)

    def job_runs(self, project: str, name: str, limit: int = 20) -> list[dict[str, Any]]:
        return [run.describe() for run in self.services.jobs.runs(self.user, project, name, limit)]

    def cancel_job(self, project: str, name: str, run_id: str | None = None) -> list[str]:
        return self.services.jobs.cancel(self.user, project, name, run_id)

    def pause_job(self, project: str, name: str) -> str:
        return self.services.jobs.pause(self.user, project, name)

    def resume_job(self, project: str, name: str) -> str:
        return self.services.jobs.resume(self.user, project, name)

    def close(self) -> None:
        self.services.close()
