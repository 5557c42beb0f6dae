"""The Jupyter server's API as the magics and the bridge kernel reach it: with the token the server
gave the kernel, idempotent calls retried through a server restart, a statement never sent twice,
and runs followed by long polls. Imports nothing of the services, the store or the engines."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from prophecy_jupyter import errors
from prophecy_jupyter.client import kernel_token
from prophecy_jupyter.client.backend import FIRST_WAIT, Notify, fabric_row
from prophecy_jupyter.client.link import API_PREFIX, KERNEL_HEADER, SERVER_CA_ENV, SERVER_URL_ENV
from prophecy_jupyter.client.wire import TABLE_HEADER, decode_result, decode_table_header
from prophecy_jupyter.results.model import Result, RunState
from prophecy_jupyter.results.sending import ARROW_STREAM
from prophecy_jupyter.results.transport import TablePayload
from prophecy_jupyter.sql_parameters import SqlParameter


def _told(answer: dict[str, Any], notify: Notify) -> dict[str, Any]:
    """``answer``, once the user has heard its ``messages``."""
    for message in answer.get("messages", []):
        notify(message)
    return answer


class RemoteRun:
    """A run in the server's session service, followed by long polls."""

    def __init__(self, backend: ServerBackend, body: dict[str, Any]):
        self._backend = backend
        self._started = time.monotonic()
        self._body = body

    def _update(self, body: dict[str, Any]) -> None:
        self._body = body

    @property
    def id(self) -> str:
        return self._body["id"]

    @property
    def kind(self) -> str:
        return self._body["kind"]

    @property
    def state(self) -> str:
        return self._body["state"]

    @property
    def progress(self) -> float | None:
        return self._body.get("progress")

    @property
    def detail(self) -> str | None:
        return self._body.get("detail")

    @property
    def done(self) -> bool:
        return self._body["state"] in RunState.DONE

    @property
    def elapsed(self) -> float:
        return self._body.get("elapsed", time.monotonic() - self._started)

    @property
    def result(self) -> Result | None:
        return decode_result(self._body.get("result"))

    @property
    def notes(self) -> list[str]:
        return self._body.get("notes") or []

    def wait(self, timeout: float | None = None) -> bool:
        if self.done:
            return True
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.done:
            step = 10.0 if deadline is None else max(0.0, deadline - time.monotonic())
            self._update(
                self._backend.get(f"/runs/{self.id}", params={"wait": f"{step:.3f}"}, timeout=step + 30)
            )
            if deadline is not None and time.monotonic() >= deadline:
                break
        return self.done


class ServerBackend:
    """The Jupyter server's API, reached with the token the server gave this kernel."""

    def __init__(self, url: str, token: str, ca_bundle: str | None = None):
        self.url = url.rstrip("/") + API_PREFIX
        self._http = requests.Session()
        self._http.headers[KERNEL_HEADER] = token
        # Idempotent calls ride out a server restart; a POST (a statement) is never sent twice.
        retry = Retry(
            total=4, backoff_factor=0.25, status_forcelist=(503,), allowed_methods={"GET", "PUT", "DELETE"}
        )
        self._http.mount("http://", HTTPAdapter(max_retries=retry))
        self._http.mount("https://", HTTPAdapter(max_retries=retry))
        # Proxies and $REQUESTS_CA_BUNDLE are read from the environment once, here, not on every
        # call (as the Livy client does); ~/.netrc is never read: the kernel's token is its auth.
        environment = self._http.merge_environment_settings(self.url, {}, None, ca_bundle or True, None)
        self._http.proxies = environment["proxies"]
        self._verify: str | bool = environment["verify"]
        self._http.trust_env = False
        self._session_ids: dict[tuple[str, str], str] = {}

    @classmethod
    def from_environment(cls) -> ServerBackend | None:
        url, token = os.environ.get(SERVER_URL_ENV), kernel_token.token()
        if not url or not token:
            return None
        return cls(url, token, os.environ.get(SERVER_CA_ENV))

    def _call(self, method: str, path: str, timeout: float = 60.0, **kwargs: Any) -> requests.Response:
        try:
            response = self._http.request(
                method, self.url + path, timeout=(5, timeout), verify=self._verify, **kwargs
            )
        except requests.RequestException as exc:
            raise errors.Unavailable(
                f"The Jupyter server did not answer ({type(exc).__name__}); is it still running?"
            ) from None
        if response.status_code >= 400:
            try:
                answer = response.json()
            except ValueError:
                answer = {"message": response.reason}
            raise errors.from_answer(response.status_code, answer)
        return response

    def get(self, path: str, timeout: float = 60.0, **kwargs: Any) -> dict[str, Any]:
        return self._call("GET", path, timeout, **kwargs).json()

    def post(self, path: str, body: dict[str, Any] | None = None, timeout: float = 60.0) -> dict[str, Any]:
        return self._call("POST", path, timeout, json=body or {}).json()

    def _session(self, notebook: str, fabric: str, notify: Notify) -> dict[str, Any]:
        session = self.post("/sessions", {"notebook": notebook, "fabric": fabric, "wait": True}, timeout=900)
        self._session_ids[(notebook, fabric)] = session["id"]
        return _told(session, notify)

    def _submit(
        self, notebook: str, fabric: str, notify: Notify, submit: Callable[[str], dict[str, Any]]
    ) -> RemoteRun:
        """``submit(session_id)`` on the notebook's session: the one this kernel last used (the
        server starts it again if it ended), else the one ``POST /sessions`` opens. A cell is one
        request: a 404 means the session was closed and the statement never sent."""
        known = self._session_ids.get((notebook, fabric))
        if known is not None:
            try:
                return RemoteRun(self, _told(submit(known), notify))
            except errors.NotFound:
                self._session_ids.pop((notebook, fabric), None)
        session = self._session(notebook, fabric, notify)
        return RemoteRun(self, _told(submit(session["id"]), notify))

    def fabrics(self) -> list[dict[str, Any]]:
        return [fabric_row(f) for f in self.get("/fabrics")["fabrics"]]

    def attach(self, notebook: str, fabric: str) -> dict[str, Any]:
        ref = self._call("PUT", "/attachments", json={"notebook": notebook, "fabric": fabric}).json()[
            "fabric"
        ]
        chosen = next(f for f in self.get("/fabrics")["fabrics"] if f["ref"] == ref)
        if chosen.get("warm_on_attach"):
            self.post("/sessions", {"notebook": notebook, "fabric": ref, "wait": False})
        return fabric_row(chosen)

    def attachment(self, notebook: str) -> str | None:
        return self.get("/attachments", params={"notebook": notebook})["fabric"]

    def notebook_of_kernel(self, kernel_id: str) -> str | None:
        """The path of the notebook a kernel runs for, as the server knows it now."""
        return self.get(f"/kernels/{quote(kernel_id, safe='')}/notebook", timeout=10)["path"]

    def has_session(self, notebook: str, fabric: str) -> bool:
        return (notebook, fabric) in self._session_ids

    def detach(self, notebook: str, fabric: str) -> int:
        closed = 0
        for session in self.get("/sessions", params={"notebook": notebook})["sessions"]:
            if session["fabric"] == fabric and session["state"] not in ("ended", "not started"):
                self._call("DELETE", f"/sessions/{session['id']}")
                closed += 1
        self._session_ids.pop((notebook, fabric), None)
        self._call("DELETE", "/attachments", params={"notebook": notebook})
        return closed

    def _post_run(
        self, notebook: str, fabric: str, what: str, body: dict[str, Any], notify: Notify
    ) -> RemoteRun:
        """``POST /sessions/{id}/{what}`` on the notebook's session (the session may start first)."""
        return self._submit(
            notebook,
            fabric,
            notify,
            lambda session: self._call(
                "POST", f"/sessions/{session}/{what}", 900, json=body, params={"wait": FIRST_WAIT}
            ).json(),
        )

    def run(self, notebook: str, fabric: str, code: str, language: str, notify: Notify) -> RemoteRun:
        return self._post_run(notebook, fabric, "runs", {"code": code, "language": language}, notify)

    def table(self, notebook: str, fabric: str, source: str, limit: int, notify: Notify) -> RemoteRun:
        return self._post_run(notebook, fabric, "tables", {"source": source, "limit": limit}, notify)

    def sql_table(
        self,
        notebook: str,
        fabric: str,
        query: str,
        parameters: list[SqlParameter],
        limit: int,
        notify: Notify,
    ) -> RemoteRun:
        body = {"sql": query, "parameters": [p.to_json() for p in parameters], "limit": limit}
        return self._post_run(notebook, fabric, "tables", body, notify)

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
    ) -> RemoteRun:
        query = {
            "key": key,
            "part": part,
            "name": name,
            "last": str(last).lower(),
            "view": str(view).lower(),
            "wait": FIRST_WAIT,
        }

        def submit(session: str) -> dict[str, Any]:
            headers = {"Content-Type": ARROW_STREAM}
            return self._call(
                "POST", f"/sessions/{session}/sends", 900, params=query, data=data, headers=headers
            ).json()

        return self._submit(notebook, fabric, notify, submit)

    def frame(self, run: RemoteRun) -> Result:
        if run.state != RunState.FINISHED:
            return run.result or Result.of_error("Cancelled", "The table fetch was cancelled.")
        from prophecy_jupyter.results.frames import frame_from_payload  # pandas and pyarrow, on first use

        response = self._call("GET", f"/runs/{run.id}/table", timeout=600)
        header = decode_table_header(response.headers[TABLE_HEADER])
        limit = run.result.row_limit if run.result else -1
        payload = TablePayload(header, response.content, limit)
        del response
        return Result.of_table(frame_from_payload(payload), truncated=header.truncated, row_limit=limit)

    def cancel(self, run: RemoteRun) -> None:
        run._update(self.post(f"/runs/{run.id}/cancel"))

    def _find(self, notebook: str, fabric: str) -> dict[str, Any] | None:
        sessions = self.get("/sessions", params={"notebook": notebook})["sessions"]
        return next((s for s in sessions if s["fabric"] == fabric and s["state"] != "ended"), None)

    def configure(self, notebook: str, fabric: str, settings: dict, notify: Notify) -> bool:
        session = self._find(notebook, fabric) or self._session(notebook, fabric, notify)
        reply = self.post(f"/sessions/{session['id']}/configure", {"settings": settings}, timeout=900)
        for message in reply["messages"]:
            notify(message)
        return reply["restarted"]

    def restart(self, notebook: str, fabric: str, notify: Notify) -> None:
        session = self._find(notebook, fabric) or self._session(notebook, fabric, notify)
        for message in self.post(f"/sessions/{session['id']}/restart", timeout=900).get("messages", []):
            notify(message)

    def status(self, notebook: str) -> list[dict[str, Any]]:
        return self.get("/sessions", params={"notebook": notebook})["sessions"]

    def cluster(self, fabric: str) -> dict[str, str]:
        return self.get(f"/fabrics/{quote(fabric, safe='')}/cluster")

    def start_cluster(self, fabric: str) -> dict[str, str]:
        return self.post(f"/fabrics/{quote(fabric, safe='')}/cluster/start")

    def logs(self, notebook: str, fabric: str, size: int) -> list[str]:
        session = self._find(notebook, fabric)
        return self.get(f"/sessions/{session['id']}/logs", params={"size": size})["lines"] if session else []

    def complete(self, notebook: str, fabric: str, code: str, cursor: int) -> list[str]:
        session = self._find(notebook, fabric)
        if session is None:
            return []
        return self.post(f"/sessions/{session['id']}/complete", {"code": code, "cursor": cursor})["matches"]

    def projects(self) -> list[dict[str, Any]]:
        return self.get("/projects")["projects"]

    def _project(self, project: str) -> str:
        return f"/projects/{quote(project, safe='')}"

    def generate_pipeline(self, project: str, notebook: str, name: str | None) -> dict[str, Any]:
        body = {"notebook": notebook, **({"name": name} if name else {})}
        return self.post(self._project(project) + "/pipelines", body, timeout=600)

    def project_status(self, project: str) -> dict[str, Any]:
        return self.get(self._project(project) + "/status", timeout=600)

    def project_diff(self, project: str) -> str:
        return self.get(self._project(project) + "/diff", timeout=600)["diff"]

    def project_commit(self, project: str, message: str) -> str | None:
        return self.post(self._project(project) + "/commit", {"message": message}, timeout=600)["commit"]

    def project_push(self, project: str) -> str:
        return self.post(self._project(project) + "/push", timeout=600)["branch"]

    def project_pull(self, project: str) -> str:
        return self.post(self._project(project) + "/pull", timeout=600)["branch"]

    def jobs(self, project: str) -> list[dict[str, Any]]:
        return self.get(self._project(project) + "/jobs", timeout=600)["jobs"]

    def job(self, project: str, name: str) -> dict[str, Any]:
        return self.get(self._job(project, name), timeout=600)["job"]

    def create_job(self, project: str, job: dict[str, Any], replace: bool) -> dict[str, Any]:
        return self.post(self._project(project) + "/jobs", {**job, "replace": replace}, timeout=600)

    def delete_job(self, project: str, name: str, remote: bool = False) -> dict[str, Any]:
        path = self._job(project, name) + ("?remote=true" if remote else "")
        return self._call("DELETE", path, 900).json()

    def export_job(self, project: str, name: str, format: str | None = None) -> dict[str, Any]:
        return self.post(self._job(project, name) + "/export", {"format": format}, timeout=600)

    def deploy_job(self, project: str, name: str) -> str:
        return self.post(self._job(project, name) + "/deploy", timeout=900)["message"]

    def run_job(self, project: str, name: str) -> str:
        return self.post(self._job(project, name) + "/run", timeout=600)["run_id"]

    def job_runs(self, project: str, name: str, limit: int = 20) -> list[dict[str, Any]]:
        return self.get(self._job(project, name) + "/runs", timeout=600, params={"limit": limit})["runs"]

    def cancel_job(self, project: str, name: str, run_id: str | None = None) -> list[str]:
        return self.post(self._job(project, name) + "/cancel", {"run_id": run_id}, timeout=600)["cancelled"]

    def pause_job(self, project: str, name: str) -> str:
        return self.post(self._job(project, name) + "/pause", timeout=600)["message"]

    def resume_job(self, project: str, name: str) -> str:
        return self.post(self._job(project, name) + "/resume", timeout=600)["message"]

    def _job(self, project: str, name: str) -> str:
        return f"{self._project(project)}/jobs/{quote(name, safe='')}"

    def close(self) -> None:
        self._http.close()
