"""What the magics and the bridge kernel ask of a backend, whether it reaches the Jupyter server's
session service over REST (``rest``) or runs one in the kernel's own process (``in_process``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from prophecy_jupyter.results.model import Result
from prophecy_jupyter.sql_parameters import SqlParameter

Notify = Callable[[str], None]
"""Says something to the user while work goes on (a progress line, a note)."""

FIRST_WAIT = 0.5
"""Seconds a new run is waited for before anything is shown of it: the server's answer to a submit
waits this long for the run to end, and a cell's progress bar appears no sooner."""


class RunHandle(Protocol):
    """What a waiter needs of a run, wherever it runs."""

    @property
    def done(self) -> bool: ...

    @property
    def elapsed(self) -> float: ...

    @property
    def progress(self) -> float | None: ...

    @property
    def detail(self) -> str | None:
        """What the run waits on, in words (None: nothing to say)."""
        ...

    @property
    def state(self) -> str: ...

    @property
    def result(self) -> Result | None: ...

    @property
    def notes(self) -> list[str]: ...

    def wait(self, timeout: float | None = None) -> bool: ...


class Backend(Protocol):
    def fabrics(self) -> list[dict[str, Any]]:
        """The fabrics the user may use: ``ref``, ``kind``, ``environment``, ``endpoint``."""
        ...

    def attach(self, notebook: str, fabric: str) -> dict[str, Any]:
        """Attach the notebook (warming its session where that costs nothing); the fabric's row."""
        ...

    def attachment(self, notebook: str) -> str | None: ...

    def detach(self, notebook: str, fabric: str) -> int:
        """Close the notebook's live sessions on the fabric and forget the attachment; how many."""
        ...

    def has_session(self, notebook: str, fabric: str) -> bool:
        """Whether the notebook has a session on the fabric that a statement reaches without
        starting one (none is started to answer)."""
        ...

    def run(self, notebook: str, fabric: str, code: str, language: str, notify: Notify) -> RunHandle: ...

    def table(self, notebook: str, fabric: str, source: str, limit: int, notify: Notify) -> RunHandle: ...

    def sql_table(
        self,
        notebook: str,
        fabric: str,
        query: str,
        parameters: list[SqlParameter],
        limit: int,
        notify: Notify,
    ) -> RunHandle: ...

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
    ) -> RunHandle:
        """Send a part (Arrow IPC bytes) of the local table ``key``; the ``last`` part makes the
        DataFrame ``name`` on the fabric (and a temporary view with ``view``)."""
        ...

    def frame(self, run: RunHandle) -> Result:
        """A finished table run's result, its rows as a typed DataFrame."""
        ...

    def cancel(self, run: RunHandle) -> None: ...

    def configure(self, notebook: str, fabric: str, settings: dict, notify: Notify) -> bool: ...

    def restart(self, notebook: str, fabric: str, notify: Notify) -> None: ...

    def status(self, notebook: str) -> list[dict[str, Any]]: ...

    def cluster(self, fabric: str) -> dict[str, str]: ...

    def start_cluster(self, fabric: str) -> dict[str, str]: ...

    def logs(self, notebook: str, fabric: str, size: int) -> list[str]: ...

    def complete(self, notebook: str, fabric: str, code: str, cursor: int) -> list[str]: ...

    def projects(self) -> list[dict[str, Any]]: ...

    def generate_pipeline(self, project: str, notebook: str, name: str | None) -> dict[str, Any]: ...

    def project_status(self, project: str) -> dict[str, Any]: ...

    def project_diff(self, project: str) -> str: ...

    def project_commit(self, project: str, message: str) -> str | None: ...

    def project_push(self, project: str) -> str: ...

    def project_pull(self, project: str) -> str: ...

    def jobs(self, project: str) -> list[dict[str, Any]]: ...

    def job(self, project: str, name: str) -> dict[str, Any]: ...

    def create_job(self, project: str, job: dict[str, Any], replace: bool) -> dict[str, Any]: ...

    def delete_job(self, project: str, name: str, remote: bool = False) -> dict[str, Any]:
        """``{removed: [paths], message: what the scheduler was told, or None}``."""
        ...

    def export_job(self, project: str, name: str, format: str | None = None) -> dict[str, Any]: ...

    def deploy_job(self, project: str, name: str) -> str: ...

    def run_job(self, project: str, name: str) -> str:
        """Start a run of the deployed job; its id."""
        ...

    def job_runs(self, project: str, name: str, limit: int = 20) -> list[dict[str, Any]]:
        """Recent runs, newest first (``schedulers.base.Run.describe``)."""
        ...

    def cancel_job(self, project: str, name: str, run_id: str | None = None) -> list[str]: ...

    def pause_job(self, project: str, name: str) -> str: ...

    def resume_job(self, project: str, name: str) -> str: ...

    def close(self) -> None: ...


def fabric_row(fabric: dict[str, Any]) -> dict[str, Any]:
    """A fabric as the magics list it."""
    return {key: fabric[key] for key in ("ref", "kind", "environment", "endpoint")}
