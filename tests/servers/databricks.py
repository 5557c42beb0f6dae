"""A stand-in Databricks workspace for tests, following ``shared/reference/databricks.md``.

It serves, on 127.0.0.1, what our engine and databricks-sdk call:

- auth: personal access tokens (``Authorization: Bearer``) and OAuth M2M (workspace config, OIDC
  discovery, ``/oidc/v1/token`` with client credentials and a configurable token lifetime);
- clusters (``/api/2.x/clusters/get|list|start|restart``) with their state machine
  (TERMINATED → PENDING → RUNNING);
- the Command Execution API 1.2: contexts and commands. A context is a session of our test
  gateway (a real Python interpreter with its own SparkSession, or Spark SQL), so contexts keep
  state and cancel interrupts; outputs are mapped to Databricks ``results``;
- jobs (``/api/2.1`` and ``/api/2.2``: create, reset, update, get with task pages, list, delete,
  run-now with idempotency tokens, runs submit/list/get/get-output/cancel) and workspace import
  (JSON or multipart) and mkdirs. A run whose tasks are ``spark_python_task``s of imported
  workspace files really runs them, in order, as batches of our test gateway (real PySpark): its
  state, error and logs are the batches'. Other runs pass QUEUED → RUNNING → TERMINATED in
  ``run_duration``;
- SQL warehouses and the Statement Execution API: statements run on local PySpark with named
  parameters; INLINE JSON_ARRAY results, or EXTERNAL_LINKS Arrow chunks behind presigned links
  that refuse an Authorization header, as cloud storage does.

Every request is logged (``requests``) and faults can be queued (``fail_next``): a status with an
error body, a dropped connection, or a delay.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import json
import secrets
import shutil
import tempfile
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

WORKSPACE_ID = "1234567890"
GIT_PROVIDERS = {"gitHub", "gitLab", "bitbucketCloud", "bitbucketServer", "azureDevOpsServices",
                 "gitHubEnterprise", "gitLabEnterpriseEdition", "awsCodeCommit"}  # fmt: skip
_LIVY_STATES = {
    "waiting": "Queued",
    "running": "Running",
    "available": "Finished",
    "cancelling": "Cancelling",
    "cancelled": "Cancelled",
    "error": "Error",
}


class ApiError(Exception):
    def __init__(self, status: int, body: dict[str, Any]):
        super().__init__(body)
        self.status = status
        self.body = body


class _Bytes(Exception):
    """A binary answer (a presigned download) instead of JSON."""

    def __init__(self, data: bytes):
        self.data = data


def _invalid(message: str) -> ApiError:
    return ApiError(400, {"error_code": "INVALID_PARAMETER_VALUE", "message": message})


@dataclass
class Cluster:
    cluster_id: str
    cluster_name: str
    state: str = "RUNNING"
    state_message: str = ""
    pending_until: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "cluster_id": self.cluster_id,
            "cluster_name": self.cluster_name,
            "state": self.state,
            "state_message": self.state_message,
            "spark_version": "15.4.x-scala2.12",
            "node_type_id": "i3.xlarge",
            "num_workers": 0,
            "autotermination_minutes": 60,
        }


@dataclass
class Context:
    id: str
    cluster_id: str
    language: str
    livy_session: int
    commands: dict[str, int] = field(default_factory=dict)


@dataclass
class Statement:
    """A SQL statement on a warehouse, run as one statement of the stand-in's PySpark session."""

    id: str
    warehouse_id: str
    livy_statement: int
    disposition: str
    format: str
    state: str = "PENDING"
    error: dict[str, Any] | None = None
    output: dict[str, Any] | None = None


@dataclass
class JobRun:
    """A job run; its tasks pass through QUEUED → RUNNING → TERMINATED in ``duration`` seconds."""

    run_id: int
    job_id: int | None
    run_name: str
    tasks: list[dict[str, Any]]
    started: float
    duration: float
    parameters: dict[str, Any] = field(default_factory=dict)
    cancelled: bool = False
    git_source: dict[str, Any] | None = None
    """The job's ``git_source``: its tasks' files come from that repository at that commit."""
    executed: dict[str, dict[str, Any]] | None = None
    """For a run that really runs its tasks: each task's state, error and logs by task key."""
    started_ms: int = field(default_factory=lambda: int(time.time() * 1000))
    ended_ms: int | None = None


@dataclass
class Fault:
    """What to do instead of answering the next matching request."""

    path: str
    status: int | None = None
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False
    """Close the connection without an answer: before handling the request, or after with ``handled``."""
    handled: bool = False
    delay: float = 0.0


class StandInWorkspace:
    """The workspace's state; :meth:`start` serves it on a free loopback port."""

    def __init__(self, gateway_url: str, gateway_token: str, token_lifetime: float = 3600.0):
        self.gateway_url = gateway_url
        self._gateway = requests.Session()
        self._gateway.headers["Authorization"] = f"Bearer {gateway_token}"
        self.pats = {"dapi-" + secrets.token_hex(16)}
        self.client_id, self.client_secret = "sp-" + secrets.token_hex(4), secrets.token_hex(16)
        self.token_lifetime = token_lifetime
        self.oauth_tokens: dict[str, float] = {}
        self.clusters: dict[str, Cluster] = {}
        self.contexts: dict[str, Context] = {}
        self.warehouses: dict[str, dict[str, Any]] = {}
        self.statements: dict[str, Statement] = {}
        self.links: dict[str, tuple[bytes, float]] = {}
        self.rows_per_chunk = 1000
        self.link_lifetime = 900.0
        self._sql_session: int | None = None
        self.jobs: dict[int, dict[str, Any]] = {}
        self.runs: dict[int, JobRun] = {}
        self.files: dict[str, dict[str, Any]] = {}
        self.folders: set[str] = set()
        self.git_credentials: dict[str, tuple[str, str]] = {}
        """Provider → (user name, token): the caller's Git credential (``/api/2.0/git-credentials``)."""
        self.batches: dict[int, int] = {}
        """A really run task's run id → its gateway batch."""
        self.run_duration = 1.0
        self._ids = iter(range(1001, 10**9))
        self.start_delay = 1.0
        self.requests: list[dict[str, Any]] = []
        self.faults: list[Fault] = []
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None
        self.url = ""
        self.scratch = tempfile.mkdtemp(prefix="standin-workspace-")
        """Where job runs' files and checkouts go; removed as the workspace stops."""

    @property
    def pat(self) -> str:
        return next(iter(self.pats))

    def add_cluster(self, name: str = "shared", state: str = "RUNNING") -> str:
        cluster_id = f"0101-{secrets.token_hex(3)}-{name}"
        self.clusters[cluster_id] = Cluster(cluster_id, name, state)
        return cluster_id

    def add_warehouse(self, name: str = "serverless", state: str = "RUNNING") -> str:
        warehouse_id = secrets.token_hex(8)
        self.warehouses[warehouse_id] = {"id": warehouse_id, "name": name, "state": state}
        return warehouse_id

    def execute_run(self, run: JobRun) -> None:
        """Run a job run's tasks in order, each as a batch of the gateway: its workspace file, its
        parameters; a failed or cancelled task leaves the ones after it unrun."""
        checkout = self._checkout(run) if run.git_source else None
        for task in run.tasks:
            executed = run.executed[task["task_key"]]
            if run.cancelled or any(
                e["state"].get("result_state") not in (None, "SUCCESS") for e in run.executed.values()
            ):
                executed["state"] = {"life_cycle_state": "TERMINATED", "result_state": "CANCELED",
                                     "state_message": "An earlier task did not succeed"}  # fmt: skip
                continue
            python = task["spark_python_task"]
            if isinstance(checkout, str):  # the repository could not be checked out
                executed["error"] = checkout
                executed["state"] = {"life_cycle_state": "INTERNAL_ERROR", "state_message": checkout}
                continue
            folder = tempfile.mkdtemp(prefix="job-", dir=self.scratch)
            file = f"{folder}/{python['python_file'].rsplit('/', 1)[-1]}"
            if checkout is not None:
                content = (checkout / python["python_file"]).read_bytes()
            else:
                content = self.files[python["python_file"]]["content"]
            with open(file, "wb") as out:
                out.write(content)
            body = {"file": file, "args": list(python.get("parameters") or []), "name": task["task_key"]}
            batch = self._gateway.post(f"{self.gateway_url}/batches", json=body, timeout=30).json()["id"]
            self.batches[task["run_id"]] = batch
            executed["state"] = {"life_cycle_state": "RUNNING", "state_message": "In run"}
            state = "starting"
            while state in ("not_started", "starting", "running", "busy", "idle"):
                time.sleep(0.3)
                answer = self._gateway.get(f"{self.gateway_url}/batches/{batch}/state", timeout=30)
                state = answer.json()["state"] if answer.ok else "killed"  # deleted: cancelled
            log = self._gateway.get(f"{self.gateway_url}/batches/{batch}/log?size=1000", timeout=30)
            lines = (log.json().get("log") or []) if log.ok else []
            executed["logs"] = "\n".join(lines)
            if state == "success":
                executed["state"] = {
                    "life_cycle_state": "TERMINATED",
                    "result_state": "SUCCESS",
                    "state_message": "",
                }
            else:
                errors = (
                    [line for line in lines if "Error" in line or "Exception" in line] or lines or [state]
                )
                executed["error"] = errors[-1].strip()
                result = "CANCELED" if run.cancelled else "FAILED"
                executed["state"] = {"life_cycle_state": "TERMINATED", "result_state": result,
                                     "state_message": executed["error"]}  # fmt: skip
        run.ended_ms = int(time.time() * 1000)

    def _checkout(self, run: JobRun) -> Any:
        """The job's repository at its commit, cloned with the Git credential stored for its
        provider (as Databricks does); the error Databricks would give, as text, when it cannot."""
        import base64 as b64
        import subprocess
        from pathlib import Path

        source = run.git_source or {}
        stored = self.git_credentials.get(source.get("git_provider"))
        if stored is None:
            return f"Failed to checkout Git repository: no Git credentials for {source.get('git_provider')}."
        basic = b64.b64encode(f"{stored[0]}:{stored[1]}".encode()).decode()
        env = {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "http.extraHeader",
               "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}", "GIT_TERMINAL_PROMPT": "0",
               "PATH": "/usr/bin:/bin"}  # fmt: skip
        folder = Path(tempfile.mkdtemp(prefix="git-", dir=self.scratch))
        revision = source.get("git_commit") or source.get("git_branch") or "HEAD"
        clone = ["clone", "--quiet", source["git_url"], str(folder)]
        for command in (clone, ["-C", str(folder), "checkout", "--quiet", revision]):
            done = subprocess.run(["git", *command], env=env, capture_output=True, text=True, timeout=120)
            if done.returncode != 0:
                return f"Failed to checkout Git repository: {done.stderr.strip().splitlines()[-1]}"
        return folder

    def git_credential(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /api/2.0/git-credentials``: one credential per provider for the caller."""
        provider = body.get("git_provider")
        if provider not in GIT_PROVIDERS:
            raise _invalid(f"Invalid git provider: {provider}.")
        if provider in self.git_credentials:
            message = "Only one Git credential is supported at this time."
            raise ApiError(400, {"error_code": "RESOURCE_ALREADY_EXISTS", "message": message})
        self.git_credentials[provider] = (
            body.get("git_username") or "",
            body.get("personal_access_token") or "",
        )
        return {"credential_id": len(self.git_credentials), "git_provider": provider,
                "git_username": body.get("git_username")}  # fmt: skip

    def kill_batches(self, run: JobRun) -> None:
        """Cancel a really run job: its running batch is deleted (Livy kills it)."""
        for task in run.tasks:
            batch = self.batches.get(task["run_id"])
            if batch is not None:
                self._gateway.delete(f"{self.gateway_url}/batches/{batch}", timeout=30)

    def fail_next(self, path: str, **fault: Any) -> None:
        """Queue a fault for the next request whose path starts with ``path``."""
        with self.lock:
            self.faults.append(Fault(path, **fault))

    def start(self) -> StandInWorkspace:
        workspace = self

        class Handler(_Handler):
            pass

        Handler.workspace = workspace
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, name="stand-in-workspace", daemon=True).start()
        return self

    def stop(self) -> None:
        for context in list(self.contexts.values()):
            self._drop_context(context)
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        shutil.rmtree(self.scratch, ignore_errors=True)

    # -- auth -------------------------------------------------------------------------------

    def authenticate(self, header: str | None) -> None:
        if not header:
            raise ApiError(401, {"error_code": 401, "message": "Unauthorized: no credentials."})
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer":
            raise ApiError(401, {"error_code": 401, "message": "Unsupported authorization scheme."})
        with self.lock:
            expires = self.oauth_tokens.get(token)
        if token in self.pats or (expires is not None and expires > time.time()):
            return
        raise ApiError(403, {"error_code": 403, "message": "Invalid access token."})

    def issue_token(self, basic: str | None, form: dict[str, str]) -> dict[str, Any]:
        try:
            client, _, secret = base64.b64decode((basic or "").partition(" ")[2]).decode().partition(":")
        except ValueError:
            client = secret = ""
        client = client or form.get("client_id", "")
        secret = secret or form.get("client_secret", "")
        if form.get("grant_type") != "client_credentials":
            raise ApiError(400, {"error": "unsupported_grant_type"})
        if (client, secret) != (self.client_id, self.client_secret):
            raise ApiError(
                401, {"error": "invalid_client", "error_description": "Client authentication failed"}
            )
        token = "oauth-" + secrets.token_hex(16)
        with self.lock:
            self.oauth_tokens[token] = time.time() + self.token_lifetime
        return {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": int(self.token_lifetime),
            "scope": form.get("scope", "all-apis"),
        }

    # -- clusters ---------------------------------------------------------------------------

    def cluster(self, cluster_id: str | None) -> Cluster:
        cluster = self.clusters.get(cluster_id or "")
        if cluster is None:
            raise _invalid(f"Cluster {cluster_id} does not exist")
        if cluster.state == "PENDING" and time.monotonic() >= cluster.pending_until:
            cluster.state, cluster.state_message = "RUNNING", ""
        return cluster

    def start_cluster(self, cluster_id: str | None) -> None:
        cluster = self.cluster(cluster_id)
        if cluster.state not in ("TERMINATED", "ERROR"):
            raise ApiError(
                400,
                {
                    "error_code": "INVALID_STATE",
                    "message": f"Cluster {cluster.cluster_id} is in unexpected state {cluster.state}.",
                },
            )
        cluster.state, cluster.state_message = "PENDING", "Starting Spark"
        cluster.pending_until = time.monotonic() + self.start_delay

    def restart_cluster(self, cluster_id: str | None) -> None:
        """Like Databricks: every context on the cluster is lost."""
        cluster = self.cluster(cluster_id)
        for context in [c for c in self.contexts.values() if c.cluster_id == cluster.cluster_id]:
            self._drop_context(context)
        cluster.state, cluster.state_message = "PENDING", "Restarting"
        cluster.pending_until = time.monotonic() + self.start_delay

    # -- contexts and commands ----------------------------------------------------------------

    def create_context(self, cluster_id: str | None, language: str | None) -> dict[str, Any]:
        cluster = self.cluster(cluster_id)
        if cluster.state != "RUNNING":
            raise ApiError(
                500,
                {
                    "error": f"ClusterNotReadyException: Cluster {cluster.cluster_id} is "
                    f"{cluster.state}, not running."
                },
            )
        kinds = {"python": "pyspark", "sql": "sql"}
        if language not in kinds:
            raise ApiError(400, {"error": f"Unsupported language {language!r} on this workspace."})
        answer = self._gateway.post(
            f"{self.gateway_url}/sessions", json={"kind": kinds[language]}, timeout=60
        )
        answer.raise_for_status()
        context = Context(uuid.uuid4().hex[:19], cluster.cluster_id, language, answer.json()["id"])
        with self.lock:
            self.contexts[context.id] = context
        return {"id": context.id}

    def context(self, cluster_id: str | None, context_id: str | None) -> Context:
        if not context_id:
            raise ApiError(400, {"error": "requirement failed: missing contextId"})
        with self.lock:
            context = self.contexts.get(context_id)
        if context is None or context.cluster_id != cluster_id:
            raise ApiError(400, {"error": f"ContextNotFound: context {context_id} does not exist"})
        return context

    def context_status(self, cluster_id: str | None, context_id: str | None) -> dict[str, Any]:
        context = self.context(cluster_id, context_id)
        state = self._gateway.get(f"{self.gateway_url}/sessions/{context.livy_session}/state", timeout=30)
        livy = state.json().get("state") if state.status_code == 200 else "dead"
        status = {"starting": "Pending", "not_started": "Pending", "idle": "Running", "busy": "Running"}
        return {"id": context.id, "status": status.get(livy, "Error")}

    def destroy_context(self, cluster_id: str | None, context_id: str | None) -> dict[str, Any]:
        self._drop_context(self.context(cluster_id, context_id))
        return {"id": context_id}

    def evict(self, context_id: str) -> None:
        """Drop a context as Databricks does with idle ones when a cluster has too many."""
        self._drop_context(self.contexts[context_id])

    def _drop_context(self, context: Context) -> None:
        with self.lock:
            self.contexts.pop(context.id, None)
        self._gateway.delete(f"{self.gateway_url}/sessions/{context.livy_session}", timeout=60)

    def execute(self, body: dict[str, Any]) -> dict[str, Any]:
        context = self.context(body.get("clusterId"), body.get("contextId"))
        if self.context_status(context.cluster_id, context.id)["status"] != "Running":
            raise ApiError(400, {"error": f"ContextNotRunning: context {context.id} is not running"})
        kind = "sql" if (body.get("language") or context.language) == "sql" else "pyspark"
        answer = self._gateway.post(
            f"{self.gateway_url}/sessions/{context.livy_session}/statements",
            json={"code": body.get("command", ""), "kind": kind},
            timeout=60,
        )
        answer.raise_for_status()
        command_id = uuid.uuid4().hex
        with self.lock:
            context.commands[command_id] = answer.json()["id"]
        return {"id": command_id}

    def _statement(self, query: dict[str, Any]) -> tuple[Context, str, int]:
        context = self.context(query.get("clusterId"), query.get("contextId"))
        command_id = query.get("commandId")
        if command_id not in context.commands:
            raise ApiError(400, {"error": f"CommandNotFound: command {command_id} does not exist"})
        return context, command_id, context.commands[command_id]

    def command_status(self, query: dict[str, Any]) -> dict[str, Any]:
        context, command_id, statement = self._statement(query)
        answer = self._gateway.get(
            f"{self.gateway_url}/sessions/{context.livy_session}/statements/{statement}", timeout=30
        )
        answer.raise_for_status()
        livy = answer.json()
        status = _LIVY_STATES.get(livy["state"], "Error")
        body: dict[str, Any] = {"id": command_id, "status": status}
        if status == "Finished" and livy.get("output"):
            body["results"] = results_of(livy["output"])
        return body

    def command_seconds(self, context_id: str, command_id: str) -> float:
        """How long a finished command ran in its interpreter (for latency measurements)."""
        context = self.contexts[context_id]
        answer = self._gateway.get(
            f"{self.gateway_url}/sessions/{context.livy_session}/statements/{context.commands[command_id]}",
            timeout=30,
        ).json()
        return (answer["completed"] - answer["started"]) / 1000

    def cancel(self, body: dict[str, Any]) -> dict[str, Any]:
        context, _, statement = self._statement(body)
        self._gateway.post(
            f"{self.gateway_url}/sessions/{context.livy_session}/statements/{statement}/cancel", timeout=30
        )
        return {}

    # -- SQL warehouses: the Statement Execution API ---------------------------------------------

    def warehouse(self, warehouse_id: str) -> dict[str, Any]:
        found = self.warehouses.get(warehouse_id)
        if found is None:
            raise ApiError(
                404,
                {
                    "error_code": "RESOURCE_DOES_NOT_EXIST",
                    "message": f"Warehouse {warehouse_id} does not exist.",
                },
            )
        return found

    def _sql_runner(self) -> int:
        """The PySpark session that runs every warehouse's statements (started on first use)."""
        with self.lock:
            if self._sql_session is not None:
                return self._sql_session
        answer = self._gateway.post(f"{self.gateway_url}/sessions", json={"kind": "pyspark"}, timeout=60)
        answer.raise_for_status()
        session = answer.json()["id"]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            state = self._gateway.get(f"{self.gateway_url}/sessions/{session}/state", timeout=30).json()
            if state["state"] == "idle":
                break
            time.sleep(0.1)
        with self.lock:
            self._sql_session = session
        return session

    def execute_statement(self, body: dict[str, Any]) -> dict[str, Any]:
        warehouse_id = body.get("warehouse_id") or ""
        text = body.get("statement")
        if not text:
            raise _invalid("statement is required")
        self.warehouse(warehouse_id)
        disposition, fmt = body.get("disposition", "INLINE"), body.get("format", "JSON_ARRAY")
        if disposition == "INLINE" and fmt != "JSON_ARRAY":
            raise _invalid(f"Format {fmt} is not supported with disposition INLINE; use EXTERNAL_LINKS.")
        wait = body.get("wait_timeout", "10s")
        if wait != "0s" and not (wait.endswith("s") and wait[:-1].isdigit() and 5 <= int(wait[:-1]) <= 50):
            raise _invalid("wait_timeout must be 0s or between 5s and 50s")
        params = {}
        for item in body.get("parameters") or []:
            try:
                params[item["name"]] = _parameter_value(item.get("value"), item.get("type", "STRING"))
            except (ValueError, ArithmeticError):
                raise _invalid(
                    f"Parameter {item['name']} cannot be converted to {item.get('type')}."
                ) from None
        code = _STATEMENT_CODE.format(
            statement=repr(text),
            args=repr(params),
            limit=int(body.get("row_limit") or 0),
            rows_per_chunk=self.rows_per_chunk,
            json_rows=fmt == "JSON_ARRAY",
            catalog=repr(body.get("catalog")),
            schema=repr(body.get("schema")),
        )
        session = self._sql_runner()
        answer = self._gateway.post(
            f"{self.gateway_url}/sessions/{session}/statements",
            json={"code": code, "kind": "pyspark"},
            timeout=60,
        )
        answer.raise_for_status()
        statement = Statement("01ef-" + uuid.uuid4().hex, warehouse_id, answer.json()["id"], disposition, fmt)
        with self.lock:
            self.statements[statement.id] = statement
        deadline = time.monotonic() + int(wait[:-1])
        while statement.state in ("PENDING", "RUNNING") and time.monotonic() < deadline:
            time.sleep(0.02)
            self._refresh(statement)
        if (
            statement.state in ("PENDING", "RUNNING")
            and wait != "0s"
            and body.get("on_wait_timeout") == "CANCEL"
        ):
            self.cancel_statement(statement.id)
        return self.statement_json(statement.id)

    def _sql_statement(self, statement_id: str) -> Statement:
        statement = self.statements.get(statement_id)
        if statement is None:
            raise ApiError(
                404, {"error_code": "NOT_FOUND", "message": f"Statement {statement_id} does not exist."}
            )
        return statement

    def _refresh(self, statement: Statement) -> None:
        if statement.state not in ("PENDING", "RUNNING"):
            return
        answer = self._gateway.get(
            f"{self.gateway_url}/sessions/{self._sql_session}/statements/{statement.livy_statement}",
            timeout=30,
        ).json()
        livy = answer["state"]
        if livy == "running":
            statement.state = "RUNNING"
        elif livy in ("cancelling", "cancelled"):
            statement.state = "CANCELED"
        elif livy == "available" and answer["output"]["status"] == "error":
            statement.state = "FAILED"
            output = answer["output"]
            statement.error = {
                "error_code": "BAD_REQUEST",
                "message": f"[{output['ename']}] {output['evalue']}",
            }
        elif livy == "available":
            statement.output = json.loads(answer["output"]["data"]["text/plain"].strip().splitlines()[-1])
            statement.state = "SUCCEEDED"

    def statement_json(self, statement_id: str) -> dict[str, Any]:
        statement = self._sql_statement(statement_id)
        self._refresh(statement)
        body: dict[str, Any] = {"statement_id": statement.id, "status": {"state": statement.state}}
        if statement.error:
            body["status"]["error"] = statement.error
        if statement.state == "SUCCEEDED":
            body["manifest"] = self._manifest(statement)
            if statement.output["chunks"] or statement.format == "JSON_ARRAY":
                body["result"] = self.chunk_json(statement.id, 0)
        return body

    def _manifest(self, statement: Statement) -> dict[str, Any]:
        output = statement.output
        chunks, offset = [], 0
        for index, chunk in enumerate(output["chunks"]):
            chunks.append(
                {
                    "chunk_index": index,
                    "row_offset": offset,
                    "row_count": chunk["rows"],
                    "byte_count": len(chunk["b64"]) * 3 // 4,
                }
            )
            offset += chunk["rows"]
        manifest = {
            "format": statement.format,
            "schema": {"column_count": len(output["columns"]), "columns": output["columns"]},
            "total_chunk_count": len(chunks) if statement.format != "JSON_ARRAY" else 1,
            "total_row_count": output["rows"],
            "truncated": output["truncated"],
        }
        if statement.format != "JSON_ARRAY":
            manifest["chunks"] = chunks
        return manifest

    def chunk_json(self, statement_id: str, index: int) -> dict[str, Any]:
        statement = self._sql_statement(statement_id)
        if statement.state != "SUCCEEDED":
            raise ApiError(400, {"error_code": "BAD_REQUEST", "message": f"Statement is {statement.state}."})
        output = statement.output
        if statement.format == "JSON_ARRAY":
            if index != 0:
                raise _invalid(f"Chunk {index} does not exist.")
            return {
                "chunk_index": 0,
                "row_offset": 0,
                "row_count": output["rows"],
                "data_array": output["json"],
            }
        if not 0 <= index < len(output["chunks"]):
            raise _invalid(f"Chunk {index} does not exist.")
        chunk = output["chunks"][index]
        token = secrets.token_urlsafe(24)
        expires = time.time() + self.link_lifetime
        with self.lock:
            self.links[token] = (base64.b64decode(chunk["b64"]), expires)
        link = {
            "chunk_index": index,
            "row_offset": sum(c["rows"] for c in output["chunks"][:index]),
            "row_count": chunk["rows"],
            "byte_count": len(chunk["b64"]) * 3 // 4,
            "external_link": f"{self.url}/presigned/chunks/{token}?X-Amz-Signature={secrets.token_hex(8)}",
            "expiration": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(expires)),
        }
        if index + 1 < len(output["chunks"]):
            link["next_chunk_index"] = index + 1
            link["next_chunk_internal_link"] = (
                f"/api/2.0/sql/statements/{statement.id}/result/chunks/{index + 1}"
            )
        return {"external_links": [link]}

    def cancel_statement(self, statement_id: str) -> dict[str, Any]:
        statement = self._sql_statement(statement_id)
        self._refresh(statement)
        if statement.state in ("PENDING", "RUNNING"):
            self._gateway.post(
                f"{self.gateway_url}/sessions/{self._sql_session}/statements/{statement.livy_statement}/cancel",
                timeout=30,
            )
            statement.state = "CANCELED"
        return {}

    def presigned(self, token: str, authorization: str | None) -> bytes:
        """A presigned download: like cloud storage, it refuses a second auth mechanism."""
        if authorization:
            raise ApiError(400, {"error": "InvalidArgument: Only one auth mechanism allowed"})
        with self.lock:
            data, expires = self.links.get(token, (b"", 0.0))
        if expires < time.time():
            raise ApiError(403, {"error": "AccessDenied: Request has expired"})
        return data


_STATEMENT_CODE = """
import base64 as _b64, json as _json
import pyarrow as _pa
if {catalog} is not None:
    spark.catalog.setCurrentCatalog({catalog})
if {schema} is not None:
    spark.catalog.setCurrentDatabase({schema})
_df = spark.sql({statement}, args={args})
_fields = _df.schema.fields
_table = _df.toArrow()
_truncated = bool({limit}) and _table.num_rows > {limit}
if _truncated:
    _table = _table.slice(0, {limit})
def _chunk(part):
    sink = _pa.BufferOutputStream()
    with _pa.ipc.new_stream(sink, part.schema) as writer:
        writer.write_table(part)
    return {{"rows": part.num_rows, "b64": _b64.b64encode(sink.getvalue().to_pybytes()).decode()}}
_names = {{"integer": "INT", "void": "NULL"}}
_columns = []
for _i, _f in enumerate(_fields):
    _column = {{"name": _f.name, "position": _i, "type_text": _f.dataType.simpleString().upper(),
               "type_name": _names.get(_f.dataType.typeName(), _f.dataType.typeName().upper())}}
    if _column["type_name"] == "DECIMAL":
        _column.update(type_precision=_f.dataType.precision, type_scale=_f.dataType.scale)
    _columns.append(_column)
_step = {rows_per_chunk}
_out = {{"columns": _columns, "rows": _table.num_rows, "truncated": _truncated, "chunks": []}}
if {json_rows}:
    _out["json"] = [[None if v is None else str(v) for v in r.values()] for r in _table.to_pylist()]
else:
    _out["chunks"] = [_chunk(_table.slice(i, _step)) for i in range(0, _table.num_rows, _step)]
print(_json.dumps(_out))
"""


def _parameter_value(value: str | None, kind: str) -> Any:
    """A named parameter's string value as the Python value Spark binds (by its declared type)."""
    if value is None:
        return None
    kind = kind.upper().split("(")[0]
    if kind in ("INT", "INTEGER", "BIGINT", "LONG", "SMALLINT", "SHORT", "TINYINT", "BYTE"):
        return int(value)
    if kind in ("DOUBLE", "FLOAT"):
        return float(value)
    if kind == "DECIMAL":
        import decimal

        return decimal.Decimal(value)
    if kind == "BOOLEAN":
        return value.lower() == "true"
    if kind == "DATE":
        import datetime

        return datetime.date.fromisoformat(value)
    return value


def _task_state(run: JobRun, now: float) -> dict[str, Any]:
    if run.executed is not None:
        return _executed_state(run)
    if run.cancelled:
        return {"life_cycle_state": "TERMINATED", "result_state": "CANCELED", "state_message": "Cancelled"}
    elapsed = now - run.started
    if elapsed < run.duration / 4:
        return {"life_cycle_state": "QUEUED", "state_message": "Waiting for a cluster"}
    if elapsed < run.duration:
        return {"life_cycle_state": "RUNNING", "state_message": "In run"}
    return {"life_cycle_state": "TERMINATED", "result_state": "SUCCESS", "state_message": ""}


def _executed_state(run: JobRun) -> dict[str, Any]:
    """A really run job's state from its tasks'."""
    states = [task["state"] for task in (run.executed or {}).values()]
    broken = [state for state in states if state["life_cycle_state"] == "INTERNAL_ERROR"]
    if broken:
        return {"life_cycle_state": "INTERNAL_ERROR", "state_message": broken[0]["state_message"]}
    if any(state["life_cycle_state"] != "TERMINATED" for state in states):
        running = any(state["life_cycle_state"] == "RUNNING" for state in states)
        return {"life_cycle_state": "RUNNING" if running else "QUEUED", "state_message": ""}
    failed = [state for state in states if state.get("result_state") != "SUCCESS"]
    if not failed:
        return {"life_cycle_state": "TERMINATED", "result_state": "SUCCESS", "state_message": ""}
    result = "CANCELED" if run.cancelled else "FAILED"
    message = "Cancelled" if run.cancelled else next(s["state_message"] for s in failed if s["state_message"])
    return {"life_cycle_state": "TERMINATED", "result_state": result, "state_message": message}


def _status_of(state: dict[str, Any]) -> dict[str, Any]:
    """The newer ``status`` next to the legacy ``state``."""
    life = state["life_cycle_state"]
    if life == "INTERNAL_ERROR":
        details = {"code": "INTERNAL_ERROR", "type": "INTERNAL_ERROR", "message": state["state_message"]}
        return {"state": "TERMINATED", "termination_details": details}
    if life != "TERMINATED":
        return {"state": life}
    code = {"SUCCESS": "SUCCESS", "FAILED": "RUN_EXECUTION_ERROR"}.get(state["result_state"], "CANCELED")
    return {
        "state": "TERMINATED",
        "termination_details": {
            "code": code,
            "type": {"SUCCESS": "SUCCESS", "RUN_EXECUTION_ERROR": "CLIENT_ERROR"}.get(code, "CLIENT_ERROR"),
            "message": state["state_message"],
        },
    }


class Jobs:
    """Jobs 2.1/2.2 and workspace import of a stand-in workspace."""

    def __init__(self, ws: StandInWorkspace):
        self.ws = ws

    def _job(self, job_id: Any) -> dict[str, Any]:
        try:
            return self.ws.jobs[int(job_id)]
        except (KeyError, TypeError, ValueError):
            raise _invalid(f"Job {job_id} does not exist.") from None

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        if not body.get("tasks"):
            raise _invalid("At least one task is required.")
        keys = [t.get("task_key") for t in body["tasks"]]
        if None in keys or len(set(keys)) != len(keys):
            raise _invalid("Every task needs a unique task_key.")
        git = body.get("git_source")
        if git is not None and git.get("git_provider") not in GIT_PROVIDERS:
            raise _invalid(f"Invalid git provider: {git.get('git_provider')}.")
        sourced = [t for t in body["tasks"] if t.get("spark_python_task", {}).get("source") == "GIT"]
        if sourced and git is None:
            raise _invalid("A task with source GIT needs the job's git_source.")
        job_id = next(self.ws._ids)
        self.ws.jobs[job_id] = {"job_id": job_id, "created_time": int(time.time() * 1000), "settings": body}
        return {"job_id": job_id}

    def reset(self, body: dict[str, Any]) -> dict[str, Any]:
        self._job(body.get("job_id"))["settings"] = body.get("new_settings") or {}
        return {}

    def update(self, body: dict[str, Any]) -> dict[str, Any]:
        settings = self._job(body.get("job_id"))["settings"]
        for name in body.get("fields_to_remove") or []:
            settings.pop(name, None)
        new = dict(body.get("new_settings") or {})
        if "tasks" in new:
            tasks = {t["task_key"]: t for t in settings.get("tasks", [])}
            tasks.update({t["task_key"]: t for t in new.pop("tasks")})
            settings["tasks"] = list(tasks.values())
        settings.update(new)
        return {}

    def get(self, params: dict[str, Any], version: str) -> dict[str, Any]:
        job = dict(self._job(params.get("job_id")))
        tasks = job["settings"].get("tasks", [])
        if version == "2.2" and len(tasks) > 100:
            start = int(params.get("page_token") or 0)
            job["settings"] = {**job["settings"], "tasks": tasks[start : start + 100]}
            if start + 100 < len(tasks):
                job["next_page_token"] = str(start + 100)
        return job

    def list(self, params: dict[str, Any]) -> dict[str, Any]:
        jobs = [j for j in self.ws.jobs.values() if params.get("name") in (None, j["settings"].get("name"))]
        limit = min(int(params.get("limit") or 20), 100)
        start = int(params.get("page_token") or 0)
        page = {"jobs": jobs[start : start + limit], "has_more": start + limit < len(jobs)}
        if start + limit < len(jobs):
            page["next_page_token"] = str(start + limit)
        return page

    def delete(self, body: dict[str, Any]) -> dict[str, Any]:
        self._job(body.get("job_id"))
        del self.ws.jobs[int(body["job_id"])]
        return {}

    def _start(self, job_id: int | None, name: str, tasks: list[dict[str, Any]], **extra: Any) -> JobRun:
        run = JobRun(next(self.ws._ids), job_id, name, [], time.monotonic(), self.ws.run_duration, **extra)
        run.tasks = [{**t, "run_id": next(self.ws._ids)} for t in tasks]
        self.ws.runs[run.run_id] = run
        if job_id is not None:
            run.git_source = self.ws.jobs[job_id]["settings"].get("git_source")
        files = [t.get("spark_python_task", {}).get("python_file") for t in run.tasks]
        if run.git_source or all(file in self.ws.files for file in files):
            queued = {"life_cycle_state": "QUEUED", "state_message": "Waiting for the previous task"}
            run.executed = {
                t["task_key"]: {"state": dict(queued), "error": None, "logs": ""} for t in run.tasks
            }
            threading.Thread(target=self.ws.execute_run, args=(run,), daemon=True).start()
        return run

    def list_runs(self, params: dict[str, Any]) -> dict[str, Any]:
        """``runs/list``: newest first, ``active_only`` and ``limit`` (at most 25), with tasks when
        ``expand_tasks``."""
        job_id = params.get("job_id")
        runs = [r for r in self.ws.runs.values() if job_id is None or str(r.job_id) == str(job_id)]
        if str(params.get("active_only", "false")).lower() == "true":
            runs = [r for r in runs if _task_state(r, time.monotonic())["life_cycle_state"] != "TERMINATED"]
        runs.sort(key=lambda r: r.run_id, reverse=True)
        limit = min(int(params.get("limit") or 25), 25)
        expand = str(params.get("expand_tasks", "false")).lower() == "true"
        page = [self.run_json({"run_id": r.run_id}) for r in runs[:limit]]
        if not expand:
            for body in page:
                body.pop("tasks", None)
        return {"runs": page, "has_more": len(runs) > limit}

    def run_now(self, body: dict[str, Any]) -> dict[str, Any]:
        job = self._job(body.get("job_id"))
        token = body.get("idempotency_token")
        if token:
            same = next((r for r in self.ws.runs.values() if r.parameters.get("_token") == token), None)
            if same is not None:
                return {"run_id": same.run_id, "number_in_job": same.run_id}
        parameters = {**(body.get("job_parameters") or {}), **({"_token": token} if token else {})}
        run = self._start(
            job["job_id"], job["settings"].get("name", ""), job["settings"]["tasks"], parameters=parameters
        )
        return {"run_id": run.run_id, "number_in_job": run.run_id}

    def submit(self, body: dict[str, Any]) -> dict[str, Any]:
        if not body.get("tasks"):
            raise _invalid("At least one task is required.")
        return {"run_id": self._start(None, body.get("run_name", ""), body["tasks"]).run_id}

    def _run(self, run_id: Any) -> tuple[JobRun, dict[str, Any] | None]:
        try:
            run_id = int(run_id)
        except (TypeError, ValueError):
            raise _invalid(f"Run {run_id} does not exist.") from None
        for run in self.ws.runs.values():
            if run.run_id == run_id:
                return run, None
            task = next((t for t in run.tasks if t["run_id"] == run_id), None)
            if task is not None:
                return run, task
        raise _invalid(f"Run {run_id} does not exist.")

    def run_json(self, params: dict[str, Any]) -> dict[str, Any]:
        run, _ = self._run(params.get("run_id"))
        now = time.monotonic()
        state = _task_state(run, now)
        tasks = []
        for t in run.tasks:
            task_state = run.executed[t["task_key"]]["state"] if run.executed is not None else state
            tasks.append(
                {"task_key": t["task_key"], "run_id": t["run_id"], "state": task_state,
                 "status": _status_of(task_state)}
            )  # fmt: skip
        body = {
            "run_id": run.run_id,
            "run_name": run.run_name,
            "tasks": tasks,
            "state": state,
            "status": _status_of(state),
            "start_time": run.started_ms,
            "run_page_url": f"{self.ws.url}/#job/{run.job_id}/run/{run.run_id}",
        }
        if run.ended_ms is not None:
            body["end_time"] = run.ended_ms
        if run.job_id is not None:
            body["job_id"] = run.job_id
        return body

    def output(self, params: dict[str, Any]) -> dict[str, Any]:
        run, task = self._run(params.get("run_id"))
        if task is None and len(run.tasks) > 1:
            raise _invalid(
                "Retrieving the output of runs with multiple tasks is not supported. Please retrieve "
                "the output of each individual task run instead."
            )
        task = task or run.tasks[0]
        state = _task_state(run, time.monotonic())
        if run.executed is not None:
            executed = run.executed[task["task_key"]]
            body = {
                "metadata": {
                    "run_id": task["run_id"],
                    "state": executed["state"],
                    "task_key": task["task_key"],
                }
            }
            body["logs"] = executed["logs"]
            if executed["error"]:
                body["error"] = executed["error"]
                body["error_trace"] = executed["logs"]
            return body
        body: dict[str, Any] = {
            "metadata": {"run_id": task["run_id"], "state": state, "task_key": task["task_key"]}
        }
        if state.get("result_state") == "SUCCESS":
            body["logs"] = f"ran {task['task_key']}\n"
            if "notebook_task" in task:
                body["notebook_output"] = {"result": "ok", "truncated": False}
        return body

    def cancel(self, body: dict[str, Any]) -> dict[str, Any]:
        run, _ = self._run(body.get("run_id"))
        if _task_state(run, time.monotonic())["life_cycle_state"] != "TERMINATED":
            run.cancelled = True
            if run.executed is not None:
                self.ws.kill_batches(run)
        return {}

    def import_file(self, body: dict[str, Any]) -> dict[str, Any]:
        path = body.get("path") or ""
        if not path.startswith("/"):
            raise _invalid("Path must be absolute.")
        content = body.get("content") or ""
        data = content if isinstance(content, bytes) else base64.b64decode(content)
        if len(data) > 10 * 1024 * 1024:
            raise ApiError(
                400, {"error_code": "MAX_NOTEBOOK_SIZE_EXCEEDED", "message": "File size exceeds 10 MB."}
            )
        overwrite = str(body.get("overwrite", "false")).lower() == "true"
        if path in self.ws.files and not overwrite:
            raise ApiError(
                400, {"error_code": "RESOURCE_ALREADY_EXISTS", "message": f"Path ({path}) already exists."}
            )
        self.ws.files[path] = {
            "content": data,
            "format": body.get("format", "SOURCE"),
            "language": body.get("language"),
        }
        return {}

    def status(self, params: dict[str, Any]) -> dict[str, Any]:
        path = params.get("path")
        if path not in self.ws.files:
            raise ApiError(
                404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": f"Path ({path}) doesn't exist."}
            )
        entry = self.ws.files[path]
        kind = "NOTEBOOK" if entry["language"] or entry["format"] == "JUPYTER" else "FILE"
        return {"path": path, "object_type": kind, "language": entry["language"]}


def results_of(output: dict[str, Any]) -> dict[str, Any]:
    """A Livy statement output as Command Execution API ``results``."""
    if output.get("status") == "error":
        name, value = output.get("ename", "Error"), output.get("evalue", "")
        cause = "\x1b[0;31m" + "-" * 75 + "\x1b[0m\n" + "".join(output.get("traceback") or [])
        return {
            "resultType": "error",
            "summary": f'<span class="ansi-red-fg">{name}</span>: {value}',
            "cause": cause,
        }
    data = output.get("data") or {}
    if "image/png" in data:
        return {"resultType": "image", "fileName": "data:image/png;base64," + data["image/png"]}
    table = data.get("application/json")
    if isinstance(table, dict) and {"schema", "data"} <= table.keys():
        schema = [
            {
                "name": f["name"],
                "type": json.dumps(f["type"]),
                "metadata": json.dumps(f.get("metadata") or {}),
            }
            for f in table["schema"]["fields"]
        ]
        return {
            "resultType": "table",
            "data": table["data"],
            "schema": schema,
            "truncated": False,
            "isJsonSchema": True,
        }
    return {"resultType": "text", "data": data.get("text/plain", "")}


class _Handler(BaseHTTPRequestHandler):
    workspace: StandInWorkspace
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes: no 40 ms stalls

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        parts = urllib.parse.urlsplit(self.path)
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(parts.query).items()}
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = self._body(raw)
        ws = self.workspace
        with ws.lock:
            ws.requests.append(
                {
                    "method": method,
                    "path": parts.path,
                    "query": query,
                    "body": body,
                    "authorization": self.headers.get("Authorization"),
                }
            )
            fault = next((f for f in ws.faults if parts.path.startswith(f.path)), None)
            if fault is not None:
                ws.faults.remove(fault)
        if fault is not None:
            time.sleep(fault.delay)
            if fault.drop and not fault.handled:
                self._drop()
                return
            if fault.status is not None:
                self._answer(fault.status, fault.body or {}, fault.headers)
                return
        try:
            answer = (200, self._route(method, parts.path, {**query, **body}))
        except ApiError as exc:
            answer = (exc.status, exc.body)
        except _Bytes as download:
            self._answer_bytes(download.data)
            return
        if fault is not None and fault.drop:
            self._drop()
            return
        self._answer(*answer)

    def _drop(self) -> None:
        self.close_connection = True
        self.connection.shutdown(2)

    def _body(self, raw: bytes) -> dict[str, Any]:
        kind = self.headers.get("Content-Type", "")
        if not raw:
            return {}
        if "application/x-www-form-urlencoded" in kind:
            return {k: v[-1] for k, v in urllib.parse.parse_qs(raw.decode()).items()}
        if kind.startswith("multipart/form-data"):
            message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                f"Content-Type: {kind}\r\n\r\n".encode() + raw
            )
            fields: dict[str, Any] = {}
            for part in message.iter_parts():
                name = part.get_param("name", header="content-disposition")
                payload = part.get_payload(decode=True) or b""
                fields[name] = payload if name == "content" else payload.decode()
            return fields
        try:
            data = json.loads(raw)
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    def _route(self, method: str, path: str, params: dict[str, Any]) -> dict[str, Any]:
        ws = self.workspace
        if path == "/.well-known/databricks-config":
            return {"oidc_endpoint": f"{ws.url}/oidc", "workspace_id": WORKSPACE_ID}
        if path == "/oidc/.well-known/oauth-authorization-server":
            return {
                "authorization_endpoint": f"{ws.url}/oidc/v1/authorize",
                "token_endpoint": f"{ws.url}/oidc/v1/token",
            }
        if path == "/oidc/v1/token" and method == "POST":
            return ws.issue_token(self.headers.get("Authorization"), params)
        if path.startswith("/presigned/chunks/") and method == "GET":
            raise _Bytes(ws.presigned(path.rsplit("/", 1)[1], self.headers.get("Authorization")))
        if not path.startswith("/api/"):
            raise ApiError(404, {"error_code": "ENDPOINT_NOT_FOUND", "message": f"No API found for {path}"})
        ws.authenticate(self.headers.get("Authorization"))
        version, _, endpoint = path[len("/api/") :].partition("/")
        if version == "1.2":
            return self._command_execution(method, endpoint, params)
        if version.startswith("2.") and endpoint.startswith("clusters/"):
            return self._clusters(method, endpoint.removeprefix("clusters/"), params)
        if version in ("2.1", "2.2") and endpoint.startswith("jobs/"):
            return self._jobs(method, endpoint.removeprefix("jobs/"), params, version)
        if version == "2.0" and endpoint in ("workspace/import", "workspace/get-status"):
            jobs = Jobs(ws)
            return jobs.import_file(params) if method == "POST" else jobs.status(params)
        if version == "2.0" and endpoint == "git-credentials" and method == "POST":
            return ws.git_credential(params)
        if version == "2.0" and endpoint == "workspace/mkdirs" and method == "POST":
            ws.folders.add(params.get("path") or "/")
            return {}
        if version == "2.0" and endpoint.startswith("sql/"):
            return self._sql(method, endpoint.removeprefix("sql/").split("/"), params)
        raise ApiError(404, {"error_code": "ENDPOINT_NOT_FOUND", "message": f"No API found for {path}"})

    def _command_execution(self, method: str, endpoint: str, params: dict[str, Any]) -> dict[str, Any]:
        ws = self.workspace
        routes = {
            ("POST", "contexts/create"): lambda: ws.create_context(
                params.get("clusterId"), params.get("language")
            ),
            ("GET", "contexts/status"): lambda: ws.context_status(
                params.get("clusterId"), params.get("contextId")
            ),
            ("POST", "contexts/destroy"): lambda: ws.destroy_context(
                params.get("clusterId"), params.get("contextId")
            ),
            ("POST", "commands/execute"): lambda: ws.execute(params),
            ("GET", "commands/status"): lambda: ws.command_status(params),
            ("POST", "commands/cancel"): lambda: ws.cancel(params),
        }
        route = routes.get((method, endpoint))
        if route is None:
            raise ApiError(404, {"error": f"No API found for {method} /api/1.2/{endpoint}"})
        return route()

    def _jobs(self, method: str, endpoint: str, params: dict[str, Any], version: str) -> dict[str, Any]:
        jobs = Jobs(self.workspace)
        routes = {
            ("POST", "create"): lambda: jobs.create(params),
            ("POST", "reset"): lambda: jobs.reset(params),
            ("POST", "update"): lambda: jobs.update(params),
            ("GET", "get"): lambda: jobs.get(params, version),
            ("GET", "list"): lambda: jobs.list(params),
            ("POST", "delete"): lambda: jobs.delete(params),
            ("POST", "run-now"): lambda: jobs.run_now(params),
            ("POST", "runs/submit"): lambda: jobs.submit(params),
            ("GET", "runs/list"): lambda: jobs.list_runs(params),
            ("GET", "runs/get"): lambda: jobs.run_json(params),
            ("GET", "runs/get-output"): lambda: jobs.output(params),
            ("POST", "runs/cancel"): lambda: jobs.cancel(params),
        }
        route = routes.get((method, endpoint))
        if route is None:
            raise ApiError(
                404, {"error_code": "ENDPOINT_NOT_FOUND", "message": f"No API found for jobs/{endpoint}"}
            )
        with self.workspace.lock:
            return route()

    def _sql(self, method: str, parts: list[str], params: dict[str, Any]) -> dict[str, Any]:
        ws = self.workspace
        match method, parts:
            case "GET", ["warehouses"]:
                return {"warehouses": list(ws.warehouses.values())}
            case "GET", ["warehouses", warehouse_id]:
                return ws.warehouse(warehouse_id)
            case "POST", ["statements"]:
                return ws.execute_statement(params)
            case "GET", ["statements", statement_id]:
                return ws.statement_json(statement_id)
            case "GET", ["statements", statement_id, "result", "chunks", index] if index.isdigit():
                return ws.chunk_json(statement_id, int(index))
            case "POST", ["statements", statement_id, "cancel"]:
                return ws.cancel_statement(statement_id)
        raise ApiError(
            404, {"error_code": "ENDPOINT_NOT_FOUND", "message": f"No API found for sql/{'/'.join(parts)}"}
        )

    def _clusters(self, method: str, endpoint: str, params: dict[str, Any]) -> dict[str, Any]:
        ws = self.workspace
        if (method, endpoint) == ("GET", "get"):
            return ws.cluster(params.get("cluster_id")).to_json()
        if (method, endpoint) == ("GET", "list"):
            return {"clusters": [ws.cluster(c).to_json() for c in list(ws.clusters)]}
        if (method, endpoint) == ("POST", "start"):
            ws.start_cluster(params.get("cluster_id"))
            return {}
        if (method, endpoint) == ("POST", "restart"):
            ws.restart_cluster(params.get("cluster_id"))
            return {}
        raise ApiError(
            404, {"error_code": "ENDPOINT_NOT_FOUND", "message": f"No API found for clusters/{endpoint}"}
        )

    def _answer_bytes(self, data: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.apache.arrow.stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _answer(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
