"""REST handlers under ``/prophecy-jupyter/api/v1``: parse, authorize, call a service, serialize.

A request is authenticated either by Jupyter (the browser, or anyone with a Jupyter token) or by
the token of a kernel this server started (see ``kernel_tokens``), which acts as the user who
started that kernel. Either way jupyter_server's authorizer then decides (``@endpoint``): each
handler names its resource (``prophecy:teams``, ``prophecy:fabrics``, ``prophecy:projects``,
``prophecy:sessions``) and reading is ``read``, changing ``write``, running code or reaching a
fabric with the user's credential ``execute``. Only POST, PUT, PATCH and DELETE change anything,
and they are XSRF-checked for browsers. Domain errors map to HTTP statuses in
:meth:`ApiHandler.write_error`, the one place that does it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from jupyter_server.auth.decorator import authorized
from jupyter_server.auth.identity import User
from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web

from prophecy_jupyter import errors
from prophecy_jupyter._version import __version__
from prophecy_jupyter.client.link import API_PREFIX, KERNEL_HEADER
from prophecy_jupyter.client.wire import TABLE_HEADER, encode_result, encode_table_header
from prophecy_jupyter.kinds import REGISTRY
from prophecy_jupyter.results.sending import ARROW_STREAM, DEFAULT_PART_BYTES
from prophecy_jupyter.server.json_body import json_object
from prophecy_jupyter.services.connection_test import check_fabric
from prophecy_jupyter.services.jobs import parse_schedule
from prophecy_jupyter.services.runtime import Services
from prophecy_jupyter.services.sessions import ManagedSession, Run
from prophecy_jupyter.sql_parameters import SqlParameter

MAX_LONG_POLL = 30.0
T = TypeVar("T")


def endpoint(action: str | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Jupyter authentication, then the deployment's authorizer for ``action`` (by default the
    HTTP method's: read or write) on the handler's ``auth_resource``."""

    def decorate(method: Callable[..., Any]) -> Callable[..., Any]:
        return web.authenticated(authorized(action)(method))

    return decorate


class ApiHandler(ExtensionHandlerMixin, APIHandler):
    """Authentication (Jupyter's, or a kernel's token), JSON bodies and mapped errors."""

    auth_resource = "prophecy"
    max_body: int | None = None
    """The largest body this route takes (None: ``max_request_bytes``)."""
    hung_up = False
    """Whether the client closed its connection before it had the answer."""
    _held: asyncio.Future | None = None
    """The answer ``until_done`` holds, settled early when the client hangs up."""

    @property
    def services(self) -> Services:
        return self.settings["prophecy_services"]

    @property
    def user(self) -> str:
        """Who the request acts as in our services (see ``ProphecyJupyter.identity``)."""
        return self.settings["prophecy_user_of"](self.current_user)

    def on_connection_close(self) -> None:
        self.hung_up = True
        if self._held is not None:
            _settle(self._held)

    def wait_seconds(self) -> float:
        """The ``wait`` argument: how long the answer may wait for a run to end (capped)."""
        try:
            return min(max(float(self.get_query_argument("wait", "0")), 0.0), MAX_LONG_POLL)
        except ValueError:
            raise errors.Invalid("wait: expected a number of seconds", "wait") from None

    async def until_done(self, run: Run, wait: float) -> None:
        """Hold the answer until the run is over, ``wait`` seconds are up or the client hangs up."""
        if not wait or run.done or self.hung_up:
            return
        loop = asyncio.get_running_loop()
        self._held = loop.create_future()
        run.add_done_callback(lambda: loop.call_soon_threadsafe(_settle, self._held))
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._held, wait)

    async def prepare(self) -> None:
        token = self.request.headers.get(KERNEL_HEADER)
        if token is not None:
            holder = self.settings["prophecy_kernel_tokens"].holder(token)
            if holder is None:
                raise web.HTTPError(
                    403, "The kernel token is not valid: not a kernel of this server, or its kernel ended."
                )
            self.current_user = self._jupyter_current_user = User(username=holder.username)
        else:
            await super().prepare()
        limit = self.max_body or self.settings["prophecy_max_body"]
        if len(self.request.body or b"") > limit:
            raise web.HTTPError(413, f"The request body is larger than {limit // 1024} KiB.")

    def check_xsrf_cookie(self) -> None:
        if KERNEL_HEADER not in self.request.headers:
            super().check_xsrf_cookie()

    def body(self) -> dict[str, Any]:
        """The request's JSON object (see ``json_body``)."""
        return json_object(self.request.body)

    def field(self, data: dict[str, Any], name: str, kind: type[T] = str, required: bool = True) -> T:
        value = data.get(name)
        if value is None and not required:
            return None  # type: ignore[return-value]
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise errors.Invalid(f"{name}: expected a {kind.__name__}", name)
        return value

    def notebook(self, value: str) -> str:
        """A notebook as the server names it: kernels send absolute paths, the UI paths under the root."""
        root = self.settings["prophecy_root"]
        try:
            valid = b"\x00" not in os.fsencode(value)
        except UnicodeEncodeError:
            valid = False
        if not valid:
            raise errors.Invalid("notebook: not a valid file path", "notebook")
        if os.path.isabs(value):
            real = os.path.realpath(value)
            if real == root or real.startswith(root + os.sep):
                return os.path.relpath(real, root)
        return value

    def reply(self, body: Any, status: int = 200) -> None:
        self.set_status(status)
        if status == 204:
            self.finish()
        else:
            self.finish(json.dumps(body))

    def reply_run(self, run: Run, status: int = 200, **more: Any) -> None:
        """Answer with the run (and ``more`` fields); once it is over, the client has been told."""
        self.reply({**run_json(run), **more}, status)
        if run.done:
            self.services.sessions.told(run)

    async def blocking(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a call that may wait on the network on the extension's pool, off the event loop."""
        pool = self.settings["prophecy_pool"]
        return await asyncio.get_running_loop().run_in_executor(pool, functools.partial(fn, *args))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        mapped = errors.http_status(exc)
        if mapped is not None:
            self.set_status(mapped)
            body = errors.to_answer(exc)
        elif isinstance(exc, web.HTTPError):
            body = {"message": exc.log_message or self._reason, "reason": exc.reason, "field": None}
        else:
            body = {"message": "Internal error; see the server log.", "reason": None, "field": None}
        if self.get_status() == 405:
            self.set_header("Allow", ", ".join(self.allowed_methods()))
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))

    @classmethod
    def allowed_methods(cls) -> list[str]:
        """The HTTP methods this handler serves (for the ``Allow`` header of a 405)."""
        own = [c for c in cls.__mro__ if c.__module__ == __name__]
        return [
            m.upper() for m in ("get", "post", "put", "patch", "delete") if any(m in vars(c) for c in own)
        ]

    def log_exception(self, typ, value, tb) -> None:
        if errors.http_status(value) is not None:
            self.log.info("%s %s: %s", self.request.method, self.request.path, value)
        else:
            super().log_exception(typ, value, tb)


def _settle(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)


def run_json(run: Run) -> dict[str, Any]:
    return {**run.describe(), "result": encode_result(run.result) if run.done else None}


# -- identity and teams ---------------------------------------------------------------------


class SpecHandler(ApiHandler):
    """This API's OpenAPI description."""

    @endpoint()
    def get(self) -> None:
        spec = resources.files("prophecy_jupyter.server").joinpath("openapi.yaml").read_bytes()
        self.finish(spec, set_content_type="application/yaml")


class MeHandler(ApiHandler):
    auth_resource = "prophecy:teams"

    @endpoint()
    def get(self) -> None:
        teams = [t.to_json() for t in self.services.teams.teams_of(self.user)]
        self.reply({"user": self.user, "version": __version__, "teams": teams})


class TeamsHandler(ApiHandler):
    auth_resource = "prophecy:teams"

    @endpoint()
    def get(self) -> None:
        self.reply({"teams": [t.to_json() for t in self.services.teams.teams_of(self.user)]})

    @endpoint()
    def post(self) -> None:
        name = self.field(self.body(), "name")
        self.reply(self.services.teams.create(self.user, name).to_json(), 201)


class TeamHandler(ApiHandler):
    auth_resource = "prophecy:teams"

    @endpoint()
    def get(self, team: str) -> None:
        role = self.services.teams.require_member(self.user, team)
        self.reply({"name": team, "role": role})

    @endpoint()
    def delete(self, team: str) -> None:
        self.services.teams.delete(self.user, team)
        self.reply(None, 204)


class MembersHandler(ApiHandler):
    auth_resource = "prophecy:teams"

    @endpoint()
    def get(self, team: str) -> None:
        self.reply({"members": [m.to_json() for m in self.services.teams.members(self.user, team)]})


class MemberHandler(ApiHandler):
    auth_resource = "prophecy:teams"

    @endpoint()
    def put(self, team: str, username: str) -> None:
        role = self.field(self.body(), "role")
        self.reply(self.services.teams.set_member(self.user, team, username, role).to_json())

    @endpoint()
    def delete(self, team: str, username: str) -> None:
        self.services.teams.remove_member(self.user, team, username)
        self.reply(None, 204)


# -- fabrics and credentials -----------------------------------------------------------------


class KindsHandler(ApiHandler):
    """The kinds of fabric this server knows, and what each can do."""

    auth_resource = "prophecy:fabrics"

    @endpoint()
    def get(self) -> None:
        self.reply({"kinds": [kind.describe() for kind in REGISTRY.values()]})


class FabricsHandler(ApiHandler):
    auth_resource = "prophecy:fabrics"

    @endpoint()
    def get(self) -> None:
        service = self.services.fabrics
        body = []
        for fabric in service.list(self.user):
            status = service.credential_status(self.user, fabric)
            body.append(
                {
                    **fabric.to_json(),
                    "credential": {
                        "needed": fabric.secret_needed,
                        **(status.to_json() if status else {"set": None}),
                    },
                }
            )
        self.reply({"fabrics": body})


class TeamFabricsHandler(ApiHandler):
    auth_resource = "prophecy:fabrics"

    @endpoint()
    def post(self, team: str) -> None:
        self.reply(self.services.fabrics.create(self.user, team, self.body()).to_json(), 201)


class FabricHandler(ApiHandler):
    auth_resource = "prophecy:fabrics"

    @endpoint()
    def get(self, fabric_id: str) -> None:
        self.reply(self.services.fabrics.get(self.user, fabric_id).to_json())

    @endpoint()
    def patch(self, fabric_id: str) -> None:
        self.reply(self.services.fabrics.update(self.user, fabric_id, self.body()).to_json())

    @endpoint()
    def delete(self, fabric_id: str) -> None:
        self.services.fabrics.delete(self.user, fabric_id)
        self.reply(None, 204)


class FabricCredentialScoped(ApiHandler):
    """Handlers of the user's own secret for a fabric (defines no HTTP method itself)."""

    auth_resource = "prophecy:fabrics"

    def _fabric(self, fabric_id: str):
        return self.services.fabrics.secret_fabric(self.user, fabric_id)


class CredentialHandler(FabricCredentialScoped):
    """The user's own secret for a fabric: write-only (GET says whether one is set)."""

    @endpoint()
    def get(self, fabric_id: str) -> None:
        fabric = self._fabric(fabric_id)
        status = self.services.fabrics.credential_status(self.user, fabric)
        self.reply({"needed": fabric.secret_needed, **status.to_json()})

    @endpoint()
    def put(self, fabric_id: str) -> None:
        secret = self.field(self.body(), "secret")
        fabric, status = self.services.fabrics.set_secret(self.user, fabric_id, secret)
        self.reply({"needed": fabric.secret_needed, **status.to_json()})

    @endpoint()
    def delete(self, fabric_id: str) -> None:
        self.services.fabrics.delete_secret(self.user, fabric_id)
        self.reply(None, 204)


class CredentialConfirmHandler(FabricCredentialScoped):
    """The user lets their secret go to the fabric's new endpoint."""

    @endpoint()
    def post(self, fabric_id: str) -> None:
        fabric, status = self.services.fabrics.confirm_secret(self.user, fabric_id)
        self.reply({"needed": fabric.secret_needed, **status.to_json()})


class ConnectionTestHandler(ApiHandler):
    auth_resource = "prophecy:fabrics"

    @endpoint("execute")
    async def post(self, fabric_id: str) -> None:
        report = await self.blocking(check_fabric, self.services.fabrics, self.user, fabric_id)
        self.reply(report.to_json())


class ClusterHandler(ApiHandler):
    """The cluster behind a fabric (databricks), as the user's credential sees it."""

    auth_resource = "prophecy:fabrics"

    @endpoint()
    async def get(self, fabric_id: str) -> None:
        self.reply(await self.blocking(self.services.clusters.state, self.user, fabric_id))


class ClusterStartHandler(ApiHandler):
    auth_resource = "prophecy:fabrics"

    @endpoint("execute")
    async def post(self, fabric_id: str) -> None:
        self.reply(await self.blocking(self.services.clusters.start, self.user, fabric_id), 202)


class ClustersHandler(ApiHandler):
    """The clusters of a fabric's workspace (to pick the fabric's cluster)."""

    auth_resource = "prophecy:fabrics"

    @endpoint()
    async def get(self, fabric_id: str) -> None:
        clusters = await self.blocking(self.services.clusters.list, self.user, fabric_id)
        self.reply({"clusters": clusters})


# -- projects and pipelines -------------------------------------------------------------------


class ProjectsHandler(ApiHandler):
    auth_resource = "prophecy:projects"

    @endpoint()
    def get(self) -> None:
        projects = self.services.projects
        body = [
            {**p.to_json(), "token_set": projects.token_status(self.user, p).set}
            for p in projects.list(self.user)
        ]
        self.reply({"projects": body})


class TeamProjectsHandler(ApiHandler):
    auth_resource = "prophecy:projects"

    @endpoint()
    def post(self, team: str) -> None:
        self.reply(self.services.projects.create(self.user, team, self.body()).to_json(), 201)


class ProjectHandler(ApiHandler):
    auth_resource = "prophecy:projects"

    @endpoint()
    def get(self, project: str) -> None:
        self.reply(self.services.projects.get(self.user, project).to_json())

    @endpoint()
    def delete(self, project: str) -> None:
        self.services.projects.delete(self.user, project)
        self.reply(None, 204)


class ProjectTokenHandler(ApiHandler):
    """The user's own token for a project: write-only (GET says whether one is set)."""

    auth_resource = "prophecy:projects"

    @endpoint()
    def get(self, project: str) -> None:
        found = self.services.projects.get(self.user, project)
        self.reply({"needed": "token", **self.services.projects.token_status(self.user, found).to_json()})

    @endpoint()
    def put(self, project: str) -> None:
        data = self.body()
        token, username = self.field(data, "token"), self.field(data, "username", required=False)
        found = self.services.projects.set_token(self.user, project, token, username)
        self.reply({"needed": "token", **self.services.projects.token_status(self.user, found).to_json()})

    @endpoint()
    def delete(self, project: str) -> None:
        self.services.projects.delete_token(self.user, project)
        self.reply(None, 204)


class ProjectStatusHandler(ApiHandler):
    auth_resource = "prophecy:projects"

    @endpoint()
    async def get(self, project: str) -> None:
        self.reply(await self.blocking(self.services.projects.status, self.user, project, False))


class ProjectDiffHandler(ApiHandler):
    auth_resource = "prophecy:projects"

    @endpoint()
    async def get(self, project: str) -> None:
        diff = await self.blocking(self.services.projects.diff, self.user, project, None, False)
        self.reply({"diff": diff})


class ProjectHistoryHandler(ApiHandler):
    auth_resource = "prophecy:projects"

    @endpoint()
    async def get(self, project: str) -> None:
        try:
            limit = min(max(int(self.get_query_argument("limit", "20")), 1), 500)
        except ValueError:
            raise errors.Invalid("limit: expected a number", "limit") from None
        commits = await self.blocking(self.services.projects.history, self.user, project, limit, False)
        self.reply({"commits": commits})


class ProjectCommitHandler(ApiHandler):
    auth_resource = "prophecy:projects"

    @endpoint()
    async def post(self, project: str) -> None:
        message = self.field(self.body(), "message")
        if not message.strip():
            raise errors.Invalid("message: a commit needs a message", "message")
        commit = await self.blocking(self.services.projects.commit, self.user, project, message)
        self.reply({"commit": commit})


class ProjectPushHandler(ApiHandler):
    auth_resource = "prophecy:projects"

    @endpoint()
    async def post(self, project: str) -> None:
        self.reply({"branch": await self.blocking(self.services.projects.push, self.user, project)})


class ProjectPullHandler(ApiHandler):
    auth_resource = "prophecy:projects"

    @endpoint()
    async def post(self, project: str) -> None:
        self.reply({"branch": await self.blocking(self.services.projects.pull, self.user, project)})


class PipelinesHandler(ApiHandler):
    """Generate a notebook's pipeline into the user's working copy of the project."""

    auth_resource = "prophecy:projects"

    @endpoint()
    async def post(self, project: str) -> None:
        data = self.body()
        path = self.notebook(self.field(data, "notebook"))
        name = self.field(data, "name", required=False)
        root = self.settings["prophecy_root"]
        file = os.path.realpath(os.path.join(root, path))
        if not file.startswith(root + os.sep) or not file.endswith(".ipynb") or not os.path.isfile(file):
            raise errors.NotFound(f"No notebook '{path}' under the server's root.")
        generated = await self.blocking(
            self.services.notebooks.generate_pipeline, self.user, project, path, Path(file), name
        )
        self.reply(generated.to_json())


class PipelineHandler(ApiHandler):
    """A committed pipeline's files (from the encrypted cache when it can)."""

    auth_resource = "prophecy:projects"

    @endpoint()
    async def get(self, project: str, name: str) -> None:
        files = await self.blocking(self.services.projects.pipeline_files, self.user, project, name, False)
        self.reply({"files": {path: content.decode("utf-8", "replace") for path, content in files.items()}})


class JobsHandler(ApiHandler):
    """The project's jobs in the user's working copy; create one (checked, written, not committed)."""

    auth_resource = "prophecy:projects"

    @endpoint()
    async def get(self, project: str) -> None:
        jobs = await self.blocking(self.services.jobs.list, self.user, project)
        self.reply({"jobs": [job.describe() for job in jobs]})

    @endpoint()
    async def post(self, project: str) -> None:
        data = self.body()
        replace = self.field(data, "replace", bool, required=False) or False
        data.pop("replace", None)
        job, changed = await self.blocking(self.services.jobs.create, self.user, project, data, replace)
        self.reply({"job": job.describe(), "changed": changed})


class JobHandler(ApiHandler):
    auth_resource = "prophecy:projects"

    @endpoint()
    async def get(self, project: str, name: str) -> None:
        job = await self.blocking(self.services.jobs.get, self.user, project, name)
        self.reply({"job": job.describe()})

    @endpoint()
    async def delete(self, project: str, name: str) -> None:
        remote = self.get_query_argument("remote", "false") == "true"
        removed, message = await self.blocking(self.services.jobs.delete, self.user, project, name, remote)
        self.reply({"removed": removed, "message": message})


class JobExportHandler(ApiHandler):
    """The job as its fabric's scheduler takes it, written beside it in the working copy."""

    auth_resource = "prophecy:projects"

    @endpoint()
    async def post(self, project: str, name: str) -> None:
        target = self.field(self.body(), "format", required=False)
        exported, changed, used = await self.blocking(
            self.services.jobs.export, self.user, project, name, target
        )
        files = {path: content.decode("utf-8", "replace") for path, content in exported.files.items()}
        self.reply({"format": used, "files": files, "changed": changed})


class JobDeployHandler(ApiHandler):
    """Create or replace the job on its fabric's scheduler, with the user's own credential."""

    auth_resource = "prophecy:projects"

    @endpoint()
    async def post(self, project: str, name: str) -> None:
        message = await self.blocking(self.services.jobs.deploy, self.user, project, name)
        self.reply({"message": message})


class JobRunHandler(ApiHandler):
    """Start a run of the deployed job now."""

    auth_resource = "prophecy:projects"

    @endpoint()
    async def post(self, project: str, name: str) -> None:
        run_id = await self.blocking(self.services.jobs.run_now, self.user, project, name)
        self.reply({"run_id": run_id, "message": f"Started run {run_id} of job {name}."})


class JobRunsHandler(ApiHandler):
    """The deployed job's recent runs, newest first."""

    auth_resource = "prophecy:projects"

    @endpoint()
    async def get(self, project: str, name: str) -> None:
        try:
            limit = min(max(int(self.get_query_argument("limit", "20")), 1), 100)
        except ValueError:
            raise errors.Invalid("limit: expected a whole number", "limit") from None
        runs = await self.blocking(self.services.jobs.runs, self.user, project, name, limit)
        self.reply({"runs": [run.describe() for run in runs]})


class JobCancelHandler(ApiHandler):
    """Cancel a run of the job (every active run when no ``run_id`` is given)."""

    auth_resource = "prophecy:projects"

    @endpoint()
    async def post(self, project: str, name: str) -> None:
        run_id = self.field(self.body(), "run_id", required=False)
        cancelled = await self.blocking(self.services.jobs.cancel, self.user, project, name, run_id)
        message = f"Cancelled {', '.join(cancelled)}." if cancelled else f"Job {name} had no run to cancel."
        self.reply({"cancelled": cancelled, "message": message})


class JobPauseHandler(ApiHandler):
    """Pause the deployed job's schedule."""

    auth_resource = "prophecy:projects"

    @endpoint()
    async def post(self, project: str, name: str) -> None:
        self.reply({"message": await self.blocking(self.services.jobs.pause, self.user, project, name)})


class JobResumeHandler(ApiHandler):
    """Resume the deployed job's schedule."""

    auth_resource = "prophecy:projects"

    @endpoint()
    async def post(self, project: str, name: str) -> None:
        self.reply({"message": await self.blocking(self.services.jobs.resume, self.user, project, name)})


class SchedulePreviewHandler(ApiHandler):
    """The next fire times of a cron in a zone, as a job would have them (for forms)."""

    auth_resource = "prophecy:projects"

    @endpoint()
    async def post(self) -> None:
        data = self.body()
        count = self.field(data, "count", int, required=False) or 3
        schedule = parse_schedule({"cron": data.get("cron"), "timezone": data.get("timezone") or "UTC"})
        self.reply({"next_runs": [run.isoformat() for run in schedule.next_runs(min(max(count, 1), 20))]})


# -- attachments ------------------------------------------------------------------------------


class AttachmentsHandler(ApiHandler):
    auth_resource = "prophecy:sessions"

    @endpoint()
    def get(self) -> None:
        notebook = self.notebook(self.get_query_argument("notebook", ""))
        self.reply({"notebook": notebook, "fabric": self.services.attachments.get(self.user, notebook)})

    @endpoint()
    def put(self) -> None:
        data = self.body()
        notebook, fabric = self.notebook(self.field(data, "notebook")), self.field(data, "fabric")
        self.reply(
            {"notebook": notebook, "fabric": self.services.attachments.attach(self.user, notebook, fabric)}
        )

    @endpoint()
    def delete(self) -> None:
        self.services.attachments.detach(self.user, self.notebook(self.get_query_argument("notebook", "")))
        self.reply(None, 204)


class KernelNotebookHandler(ApiHandler):
    """The notebook a kernel runs for now: Jupyter follows renames, the kernel's environment does not."""

    auth_resource = "prophecy:sessions"

    @endpoint()
    async def get(self, kernel_id: str) -> None:
        for session in await self.settings["session_manager"].list_sessions():
            if session["kernel"]["id"] == kernel_id and session.get("type") == "notebook":
                path = session["path"]
                root = self.settings["prophecy_root"]
                self.reply({"notebook": path, "path": os.path.join(root, path)})
                return
        raise errors.NotFound(f"No notebook runs on kernel {kernel_id}.")


# -- sessions and runs ------------------------------------------------------------------------


class SessionsHandler(ApiHandler):
    auth_resource = "prophecy:sessions"

    @endpoint()
    async def get(self) -> None:
        """The user's sessions, and the ones that ended lately (say, while the server was down);
        naming the fabrics of ended ones may ask the store, off the event loop."""
        notebook = self.get_query_argument("notebook", None)
        notebook = self.notebook(notebook) if notebook is not None else None
        sessions = await self.blocking(self.services.sessions.status, self.user, notebook, False)
        self.reply({"sessions": sessions})

    @endpoint("execute")
    async def post(self) -> None:
        """Open (or find) the notebook's session on a fabric; ``wait`` for it to be ready."""
        data = self.body()
        notebook, fabric = self.notebook(self.field(data, "notebook")), self.field(data, "fabric")
        wait = self.field(data, "wait", bool, required=False)
        messages: list[str] = []
        service = self.services.sessions
        if wait:
            managed = await self.blocking(service.session, self.user, notebook, fabric, messages.append)
        else:
            managed = await self.blocking(service.start_in_background, self.user, notebook, fabric)
        self.reply({**managed.describe(), "messages": messages}, 200 if managed.live else 202)


class SessionScoped(ApiHandler):
    """Handlers of one of the user's sessions (defines no HTTP method itself)."""

    auth_resource = "prophecy:sessions"

    def managed(self, session_id: str) -> ManagedSession:
        return self.services.sessions.find_session(self.user, session_id)

    async def submit(self, submit: Callable[..., Run], *args: Any, **kwargs: Any) -> None:
        """Submit a run on the session (started first if it is not live) and answer with the run
        and what the user should hear about the session (``messages``): at once (202), or with
        ``wait=SECONDS`` once the run is over (200) or the time is up, as a long poll of it would,
        so that a short statement takes one request. A client that hangs up before the answer
        (a kernel interrupted) never learnt the run's id to cancel it by, so it is cancelled here."""
        wait = self.wait_seconds()
        messages: list[str] = []
        run = await self.blocking(functools.partial(submit, *args, notify=messages.append, **kwargs))
        await self.until_done(run, wait)
        if self.hung_up:
            self.services.sessions.cancel(run)
            return
        self.reply_run(run, 200 if run.done else 202, messages=messages)


class SessionHandler(SessionScoped):
    @endpoint()
    async def get(self, session_id: str) -> None:
        managed = await self.blocking(self.services.sessions.refresh, self.managed(session_id))
        self.reply(managed.describe())

    @endpoint()
    async def delete(self, session_id: str) -> None:
        await self.blocking(self.services.sessions.close_session, self.managed(session_id))
        self.reply(None, 204)


class SessionRestartHandler(SessionScoped):
    @endpoint("execute")
    async def post(self, session_id: str) -> None:
        messages: list[str] = []
        managed = await self.blocking(
            self.services.sessions.restart, self.managed(session_id), messages.append
        )
        self.reply({**managed.describe(), "messages": messages})


class SessionConfigureHandler(SessionScoped):
    @endpoint("execute")
    async def post(self, session_id: str) -> None:
        settings = self.field(self.body(), "settings", dict)
        managed = self.managed(session_id)
        messages: list[str] = []
        service = self.services.sessions
        restarted = await self.blocking(
            service.configure, self.user, managed.notebook, managed.fabric.ref, settings, messages.append
        )
        self.reply({"restarted": restarted, "messages": messages})


class SessionLogsHandler(SessionScoped):
    @endpoint()
    async def get(self, session_id: str) -> None:
        try:
            size = int(self.get_query_argument("size", "100"))
        except ValueError:
            raise errors.Invalid("size: expected an integer", "size") from None
        lines = await self.blocking(
            self.services.sessions.logs, self.managed(session_id), max(1, min(size, 10000))
        )
        self.reply({"lines": lines})


class SessionCompleteHandler(SessionScoped):
    @endpoint("execute")
    async def post(self, session_id: str) -> None:
        data = self.body()
        code, cursor = self.field(data, "code"), self.field(data, "cursor", int)
        managed = self.managed(session_id)
        matches = await self.blocking(
            self.services.sessions.complete, self.user, managed.notebook, managed.fabric.ref, code, cursor
        )
        self.reply({"matches": matches})


class RunsHandler(SessionScoped):
    @endpoint("execute")
    async def post(self, session_id: str) -> None:
        data = self.body()
        code = self.field(data, "code")
        language = self.field(data, "language", required=False) or "pyspark"
        if language not in ("pyspark", "python", "sql", "scala", "spark", "r", "sparkr"):
            raise errors.Invalid("language: one of pyspark, python, sql, scala, r", "language")
        managed = self.managed(session_id)
        sessions = self.services.sessions
        await self.submit(sessions.submit, self.user, managed.notebook, managed.fabric.ref, code, language)


class TablesHandler(SessionScoped):
    @endpoint("execute")
    async def post(self, session_id: str) -> None:
        data = self.body()
        limit = self.field(data, "limit", int, required=False)
        limit = 100_000 if limit is None else limit
        managed = self.managed(session_id)
        sessions = self.services.sessions
        if "sql" in data:
            if "source" in data:
                raise errors.Invalid("Send either source or sql, not both.", "sql")
            query = self.field(data, "sql")
            parameters = self.parameters(data.get("parameters", []))
            await self.submit(
                sessions.submit_sql, self.user, managed.notebook, managed.fabric.ref, query, limit, parameters
            )
        else:
            source = self.field(data, "source")
            prefer_arrow = self.field(data, "prefer_arrow", bool, required=False)
            await self.submit(
                sessions.submit_table,
                self.user,
                managed.notebook,
                managed.fabric.ref,
                source,
                limit,
                True if prefer_arrow is None else prefer_arrow,
            )

    def parameters(self, items: Any) -> list[SqlParameter]:
        """The ``parameters`` of a SQL table request: ``[{name, value?, type?}]``."""
        shape = "parameters: expected a list of {name, value, type} with string fields"
        if not isinstance(items, list):
            raise errors.Invalid(shape, "parameters")
        parameters = []
        for item in items:
            if not (
                isinstance(item, dict)
                and isinstance(item.get("name"), str)
                and isinstance(item.get("value"), (str, type(None)))
                and isinstance(item.get("type", "STRING"), str)
            ):
                raise errors.Invalid(shape, "parameters")
            try:
                parameters.append(SqlParameter(item["name"], item.get("value"), item.get("type", "STRING")))
            except errors.Invalid as exc:
                raise errors.Invalid(str(exc), "parameters") from None
        return parameters


class SendsHandler(SessionScoped):
    """A part of a local table, as Arrow IPC bytes, for the session's fabric (``%%send``)."""

    max_body = 2 * DEFAULT_PART_BYTES

    @endpoint("execute")
    async def post(self, session_id: str) -> None:
        if self.request.headers.get("Content-Type", "").split(";")[0].strip() != ARROW_STREAM:
            raise errors.Invalid(f"The body is a part of a table as {ARROW_STREAM}.", "body")
        key, name = self.get_query_argument("key", ""), self.get_query_argument("name", "")
        try:
            part = int(self.get_query_argument("part", "0"))
        except ValueError:
            raise errors.Invalid("part: expected an integer", "part") from None
        last = self.get_query_argument("last", "false") == "true"
        view = self.get_query_argument("view", "false") == "true"
        managed = self.managed(session_id)
        await self.submit(
            self.services.sessions.submit_send,
            self.user,
            managed.notebook,
            managed.fabric.ref,
            self.request.body,
            name,
            key=key,
            part=part,
            last=last,
            view=view,
        )


class RunHandler(ApiHandler):
    auth_resource = "prophecy:sessions"

    @endpoint()
    async def get(self, run_id: str) -> None:
        """The run; with ``wait=SECONDS``, answered once the run is over or the time is up."""
        run = self.services.sessions.find_run(self.user, run_id)
        await self.until_done(run, self.wait_seconds())
        if not self.hung_up:
            self.reply_run(run)


class RunCancelHandler(ApiHandler):
    auth_resource = "prophecy:sessions"

    @endpoint()
    def post(self, run_id: str) -> None:
        run = self.services.sessions.find_run(self.user, run_id)
        self.services.sessions.cancel(run)
        self.reply_run(run)


class RunTableHandler(ApiHandler):
    """A finished table run's data: Arrow IPC (or JSON rows), with its header in a response header."""

    auth_resource = "prophecy:sessions"

    @endpoint()
    def get(self, run_id: str) -> None:
        sessions = self.services.sessions
        payload = sessions.table_data(sessions.find_run(self.user, run_id))
        header = payload.header
        kind = "application/vnd.apache.arrow.stream" if header.format == "arrow" else "application/json"
        self.set_header(TABLE_HEADER, encode_table_header(header))
        self.finish(payload.peek(), set_content_type=kind)


ROUTES: list[tuple[str, type[ApiHandler]]] = [
    # What every cell asks comes first: a request tries the patterns in this order.
    (r"/sessions/([^/]+)/runs", RunsHandler),
    (r"/runs/([^/]+)", RunHandler),
    (r"/sessions/([^/]+)/tables", TablesHandler),
    (r"/runs/([^/]+)/table", RunTableHandler),
    (r"/openapi\.yaml", SpecHandler),
    (r"/me", MeHandler),
    (r"/teams", TeamsHandler),
    (r"/teams/([^/]+)", TeamHandler),
    (r"/teams/([^/]+)/members", MembersHandler),
    (r"/teams/([^/]+)/members/([^/]+)", MemberHandler),
    (r"/teams/([^/]+)/fabrics", TeamFabricsHandler),
    (r"/kinds", KindsHandler),
    (r"/fabrics", FabricsHandler),
    (r"/fabrics/([^/]+)", FabricHandler),
    (r"/fabrics/([^/]+)/credential", CredentialHandler),
    (r"/fabrics/([^/]+)/credential/confirm", CredentialConfirmHandler),
    (r"/fabrics/([^/]+)/test", ConnectionTestHandler),
    (r"/fabrics/([^/]+)/cluster", ClusterHandler),
    (r"/fabrics/([^/]+)/cluster/start", ClusterStartHandler),
    (r"/fabrics/([^/]+)/clusters", ClustersHandler),
    (r"/projects", ProjectsHandler),
    (r"/teams/([^/]+)/projects", TeamProjectsHandler),
    (r"/projects/([^/]+)", ProjectHandler),
    (r"/projects/([^/]+)/token", ProjectTokenHandler),
    (r"/projects/([^/]+)/status", ProjectStatusHandler),
    (r"/projects/([^/]+)/diff", ProjectDiffHandler),
    (r"/projects/([^/]+)/history", ProjectHistoryHandler),
    (r"/projects/([^/]+)/commit", ProjectCommitHandler),
    (r"/projects/([^/]+)/push", ProjectPushHandler),
    (r"/projects/([^/]+)/pull", ProjectPullHandler),
    (r"/projects/([^/]+)/pipelines", PipelinesHandler),
    (r"/projects/([^/]+)/pipelines/([^/]+)", PipelineHandler),
    (r"/projects/([^/]+)/jobs", JobsHandler),
    (r"/projects/([^/]+)/jobs/([^/]+)", JobHandler),
    (r"/projects/([^/]+)/jobs/([^/]+)/export", JobExportHandler),
    (r"/projects/([^/]+)/jobs/([^/]+)/deploy", JobDeployHandler),
    (r"/projects/([^/]+)/jobs/([^/]+)/run", JobRunHandler),
    (r"/projects/([^/]+)/jobs/([^/]+)/runs", JobRunsHandler),
    (r"/projects/([^/]+)/jobs/([^/]+)/cancel", JobCancelHandler),
    (r"/projects/([^/]+)/jobs/([^/]+)/pause", JobPauseHandler),
    (r"/projects/([^/]+)/jobs/([^/]+)/resume", JobResumeHandler),
    (r"/schedules/preview", SchedulePreviewHandler),
    (r"/attachments", AttachmentsHandler),
    (r"/kernels/([^/]+)/notebook", KernelNotebookHandler),
    (r"/sessions", SessionsHandler),
    (r"/sessions/([^/]+)", SessionHandler),
    (r"/sessions/([^/]+)/restart", SessionRestartHandler),
    (r"/sessions/([^/]+)/configure", SessionConfigureHandler),
    (r"/sessions/([^/]+)/logs", SessionLogsHandler),
    (r"/sessions/([^/]+)/complete", SessionCompleteHandler),
    (r"/sessions/([^/]+)/sends", SendsHandler),
    (r"/runs/([^/]+)/cancel", RunCancelHandler),
]


def routes() -> list[tuple[str, type[ApiHandler]]]:
    return [(API_PREFIX + pattern, handler) for pattern, handler in ROUTES]
