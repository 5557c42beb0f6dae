"""Our Livy client, on ``requests``.

* Every request has a timeout; GET and DELETE are retried with backoff (urllib3's Retry, which
  also retries connection attempts that never reached the server, for any method).
* A statement POST is never retried blindly: every statement carries a run marker as a trailing
  comment, and after an ambiguous failure the client looks for that marker in the session's
  statement list before it decides to send again.
* Only the session fields the server's version accepts are sent (unknown fields are a 400).
* Cancel goes through the statement cancel endpoint, never ``/interrupt`` (which kills the
  session).
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util.retry import Retry

from prophecy_jupyter._version import __version__
from prophecy_jupyter.engines.base import RemoteSession, SessionSpec, SessionState, StatementStatus
from prophecy_jupyter.errors import AuthenticationError, EngineError, SessionGone, StatementLost
from prophecy_jupyter.results.model import Result, ResultKind, RunState
from prophecy_jupyter.results.sending import ARROW_STREAM
from prophecy_jupyter.results.transport import SPARK_TABLES

TABLE_MIME = "application/vnd.livy.table.v1+json"
AMBIGUOUS_STATUSES = frozenset({502, 503, 504})
RETRY_STATUSES = frozenset({429, 502, 503, 504})

# Since which Livy version the server accepts each session field.
_FIELD_SINCE: dict[str, tuple[int, int, int]] = {
    "kind": (0, 0, 0),
    "proxyUser": (0, 0, 0),
    "jars": (0, 0, 0),
    "pyFiles": (0, 0, 0),
    "files": (0, 0, 0),
    "archives": (0, 0, 0),
    "driverMemory": (0, 0, 0),
    "driverCores": (0, 0, 0),
    "executorMemory": (0, 0, 0),
    "executorCores": (0, 0, 0),
    "numExecutors": (0, 0, 0),
    "queue": (0, 0, 0),
    "conf": (0, 0, 0),
    "heartbeatTimeoutInSecond": (0, 2, 0),
    "name": (0, 5, 0),
    "ttl": (0, 8, 0),
    "idleTimeout": (0, 9, 0),
}
_SESSION_STATES = {
    "not_started": SessionState.STARTING,
    "starting": SessionState.STARTING,
    "recovering": SessionState.STARTING,
    "idle": SessionState.IDLE,
    "busy": SessionState.BUSY,
    "running": SessionState.BUSY,
}
_STATEMENT_STATES = {
    "waiting": RunState.QUEUED,
    "running": RunState.RUNNING,
    "cancelling": RunState.CANCELLING,
    "cancelled": RunState.CANCELLED,
}
_MARKER_COMMENT = {"sql": "--", "spark": "//", "scala": "//"}
_LIVY_TABLE_TYPES = {
    "INT_TYPE": "long",
    "BIGINT_TYPE": "long",
    "SMALLINT_TYPE": "long",
    "TINYINT_TYPE": "long",
    "DOUBLE_TYPE": "double",
    "FLOAT_TYPE": "double",
    "BOOLEAN_TYPE": "boolean",
    "STRING_TYPE": "string",
    "CHAR_TYPE": "string",
    "VARCHAR_TYPE": "string",
    "DATE_TYPE": "date",
    "TIMESTAMP_TYPE": "timestamp_ntz",
    "DECIMAL_TYPE": "decimal(38,18)",
    "NULL_TYPE": "void",
}
_ILLEGAL_STATE = re.compile(r"Session is in state (\w+)")


def parse_version(text: str) -> tuple[int, int, int]:
    """``0.8.0-incubating`` → ``(0, 8, 0)``."""
    numbers = [int(n) for n in re.findall(r"\d+", text.split("-")[0])[:3]]
    return tuple(([*numbers, 0, 0, 0])[:3])  # type: ignore[return-value]


def run_marker(kind: str, run_id: str) -> str:
    """The trailing comment that makes a statement findable after an ambiguous failure."""
    return f"\n{_MARKER_COMMENT.get(kind, '#')} prophecy-run: {run_id}"


@dataclass(frozen=True)
class LivySettings:
    """Connection settings of one Livy endpoint (never secrets)."""

    url: str
    auth: str = "none"
    username: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    ca_bundle: str | None = None
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    delete_timeout: float = 90.0
    retries: int = 4
    backoff: float = 0.2
    submit_attempts: int = 3
    submit_wait: float = 0.5
    """Seconds a gateway that long-polls holds a statement's submit until it finishes, so a short
    statement takes one request (a cancel asked meanwhile is sent when the submit answers)."""
    proxy_user: str | None = None
    """Who sessions and batches run as (Livy's ``proxyUser``); set by us, never by a notebook."""


class _Unreached(EngineError):
    """The server could not be reached (a request never sent, or no answer after the retries)."""


class _Ambiguous(Exception):
    """The request may or may not have reached the server."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _error_text(response: requests.Response) -> str:
    """The message of a Livy error body: ``{"msg": ...}``, a bare JSON string, or raw text."""
    try:
        body = response.json()
    except ValueError:
        text = re.sub(r"<[^>]+>", " ", response.text or "")
        return " ".join(text.split())[:300] or response.reason or f"HTTP {response.status_code}"
    if isinstance(body, dict):
        return str(body.get("msg") or body.get("message") or body)
    return str(body)


def _never_sent(exc: requests.RequestException) -> bool:
    """True when the connection was never made, so the server cannot have seen the request."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)
    return isinstance(reason, (NewConnectionError, ConnectTimeoutError))


class LivyEngine:
    """A Livy REST client for one fabric."""

    name = "livy"
    poll_policy = None  # the session service's; a long poll when the server offers one
    tables = SPARK_TABLES

    def __init__(
        self,
        settings: LivySettings,
        secret: str | None = None,
        fabric_name: str = "livy",
        locate: Callable[[], tuple[str, str]] | None = None,
    ):
        """``locate``: for a server that may move (our local gateway, started again after it
        stopped unused), where it is now and its token, asked before each new session or batch."""
        self.settings = settings
        self.fabric_name = fabric_name
        self._locate = locate
        self._base = settings.url.rstrip("/")
        self._http = requests.Session()
        retry = Retry(
            total=settings.retries,
            connect=settings.retries,
            read=settings.retries,
            status=settings.retries,
            backoff_factor=settings.backoff,
            backoff_max=5.0,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=frozenset({"GET", "DELETE", "HEAD"}),
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        adapter = HTTPAdapter(max_retries=retry, pool_connections=4, pool_maxsize=16)
        self._http.mount("http://", adapter)
        self._http.mount("https://", adapter)
        # What requests would read from the environment on every request (proxies, $REQUESTS_CA_BUNDLE
        # when no CA bundle is set, ~/.netrc when the fabric names no auth) is read once, here: with
        # hundreds of statements a second, those reads took a third of each call's CPU.
        verify = settings.ca_bundle or True
        environment = self._http.merge_environment_settings(self._base, {}, None, verify, None)
        self._http.proxies = environment["proxies"]
        self._verify: str | bool = environment["verify"]
        self._http.headers.update(
            {
                "X-Requested-By": "prophecy-jupyter",
                "User-Agent": f"prophecy-jupyter/{__version__}",
                "Content-Type": "application/json",
                **dict(settings.headers),
            }
        )
        self._http.auth = self._auth(settings, secret) or requests.utils.get_netrc_auth(self._base)
        self._http.trust_env = False
        self._version: tuple[int, int, int] | None = None
        self._long_poll: bool | None = None
        self._uploads = False

    def _auth(self, settings: LivySettings, secret: str | None):
        if settings.auth == "none":
            return None
        if settings.auth == "basic":
            if not settings.username or secret is None:
                raise EngineError(
                    f"Fabric '{self.fabric_name}' uses basic auth but has no "
                    f"{'username' if not settings.username else 'password'}; set it with "
                    + (
                        f"`jupyter prophecy fabric edit {self.fabric_name} --username NAME`."
                        if not settings.username
                        else f"`jupyter prophecy credentials set {self.fabric_name}`."
                    )
                )
            return (settings.username, secret)
        if settings.auth == "bearer":
            if not secret:
                raise EngineError(
                    f"Fabric '{self.fabric_name}' uses bearer auth but no token is stored; "
                    f"set yours with `jupyter prophecy credentials set {self.fabric_name}`."
                )
            return _BearerAuth(secret)
        if settings.auth == "kerberos":
            try:
                from requests_kerberos import OPTIONAL, HTTPKerberosAuth
            except ImportError:
                raise EngineError(
                    "Kerberos auth needs the optional extra: pip install 'prophecy-jupyter[kerberos]'"
                ) from None
            return HTTPKerberosAuth(mutual_authentication=OPTIONAL)
        raise EngineError(f"Unknown auth '{settings.auth}' (use none, basic, bearer or kerberos)")

    # -- HTTP -------------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
        read_timeout: float | None = None,
        ambiguous_ok: bool = False,
        data: bytes | None = None,
    ) -> Any:
        """One request (a JSON ``body``, or Arrow ``data``); with ``ambiguous_ok`` an unclear outcome
        raises :class:`_Ambiguous`."""
        url = self._base + path
        timeout = (self.settings.connect_timeout, read_timeout or self.settings.read_timeout)
        headers = None if data is None else {"Content-Type": ARROW_STREAM}
        try:
            response = self._http.request(
                method,
                url,
                data=data if data is not None else None if body is None else json.dumps(body),
                params=params,
                headers=headers,
                timeout=timeout,
                verify=self._verify,
            )
        except requests.exceptions.SSLError as exc:
            raise EngineError(
                f"TLS verification of {self._base} failed for fabric '{self.fabric_name}': "
                f"{exc.args[0] if exc.args else exc}. Give the fabric a CA bundle (--ca-bundle)."
            ) from None
        except requests.RequestException as exc:
            if ambiguous_ok and not _never_sent(exc):
                raise _Ambiguous(f"{type(exc).__name__}: {exc}") from None
            raise _Unreached(
                f"Could not reach fabric '{self.fabric_name}' at {self._base} "
                f"({type(exc).__name__}) after {self.settings.retries} retries. "
                "Check that the server is up and the URL is right, then run the cell again."
            ) from None
        if ambiguous_ok and response.status_code in AMBIGUOUS_STATUSES:
            raise _Ambiguous(f"HTTP {response.status_code}: {_error_text(response)}")
        if response.status_code >= 400:
            self._raise_for(response, method, path)
        try:
            return response.json()
        except ValueError:
            raise EngineError(
                f"Fabric '{self.fabric_name}' answered {method} {path} with something that is "
                f"not JSON: {response.text[:200]!r}. Is {self._base} a Livy server?"
            ) from None

    def _raise_for(self, response: requests.Response, method: str, path: str) -> None:
        status = response.status_code
        text = _error_text(response)
        if status in (401, 403):
            raise AuthenticationError(
                f"Fabric '{self.fabric_name}' refused the request (HTTP {status}: {text}). "
                f"Check your credential for it (`jupyter prophecy credentials set {self.fabric_name}`)."
            )
        if status == 404 and "Statement not found" in text:
            raise StatementLost(
                f"The statement is no longer known to fabric '{self.fabric_name}' ({text}). "
                "Livy keeps only the last 100 statements of a session."
            )
        if status == 404 and path.startswith("/sessions/"):
            raise SessionGone(
                f"The session on fabric '{self.fabric_name}' no longer exists ({text}); its "
                "state is lost. The next cell starts a new session."
            )
        if status == 500 and (match := _ILLEGAL_STATE.search(text)):
            state = match.group(1)
            if _SESSION_STATES.get(state) is None:
                raise SessionGone(
                    f"The session on fabric '{self.fabric_name}' is {state}; its state is lost. "
                    "The next cell starts a new session."
                )
            raise EngineError(f"The session on fabric '{self.fabric_name}' is still {state}.")
        raise EngineError(f"Fabric '{self.fabric_name}' answered {method} {path} with HTTP {status}: {text}")

    # -- server -----------------------------------------------------------------------------

    def server_version(self) -> tuple[int, int, int]:
        """The Livy version (``GET /version``, asked once); very old servers count as 0.5."""
        if self._version is None:
            try:
                info = self._request("GET", "/version")
            except EngineError as exc:
                if "HTTP 404" not in str(exc):
                    raise
                info = {}
            self._version = parse_version(str(info.get("version", "0.5.0")))
            gateway = info.get("prophecyGateway") or {}
            self._long_poll = bool(gateway.get("longPoll"))
            self._uploads = bool(gateway.get("uploads"))
        return self._version

    @property
    def supports_long_poll(self) -> bool:
        self.server_version()
        return bool(self._long_poll)

    def upload(self, session_id: str, data: bytes) -> str | None:
        """Hand Arrow bytes to the session's interpreter as a file (our gateway takes uploads): the
        name it finds them by, or None when the server takes none (Livy itself)."""
        self.server_version()
        if not self._uploads:
            return None
        answer = self._request("POST", f"/sessions/{session_id}/uploads", data=data, read_timeout=600)
        return str(answer["upload"])

    # -- sessions ---------------------------------------------------------------------------

    def session_body(self, spec: SessionSpec) -> tuple[dict[str, Any], list[str]]:
        """The POST /sessions body for this server version, and notes about dropped fields."""
        version = self.server_version()
        wanted: dict[str, Any] = {"kind": spec.kind, **spec.resources}
        if spec.name:
            wanted["name"] = spec.name
        if spec.conf:
            wanted["conf"] = {k: str(v) for k, v in spec.conf.items()}
        if spec.heartbeat_timeout is not None:
            wanted["heartbeatTimeoutInSecond"] = spec.heartbeat_timeout
        if spec.idle_timeout is not None:
            wanted["idleTimeout" if version >= _FIELD_SINCE["idleTimeout"] else "ttl"] = spec.idle_timeout
        wanted.pop("proxyUser", None)
        if self.settings.proxy_user:
            wanted["proxyUser"] = self.settings.proxy_user
        body, notes = {}, []
        shown = ".".join(map(str, version))
        for key, value in wanted.items():
            since = _FIELD_SINCE.get(key)
            if since is None:
                notes.append(f"'{key}' is not a Livy session setting; it was not sent.")
            elif version < since:
                notes.append(
                    f"Livy {shown} does not accept '{key}' (needs {'.'.join(map(str, since))}); "
                    "it was not sent."
                )
            else:
                body[key] = value
        return body, notes

    def prepare(self, notify: Callable[[str], None], timeout: float) -> None:
        """Nothing to bring up before a Livy session opens."""

    def _follow(self) -> None:
        """Reach the server where it is now (see ``locate``)."""
        if self._locate is None:
            return
        url, token = self._locate()
        if url.rstrip("/") != self._base:
            self._base, self._version = url.rstrip("/"), None
            self._http.auth = _BearerAuth(token)

    def open_session(self, spec: SessionSpec) -> RemoteSession:
        """Create a session; after an ambiguous failure find it by name before retrying."""
        self._follow()
        if spec.name is None:
            spec = SessionSpec(**{**spec.__dict__, "name": f"prophecy-{uuid.uuid4().hex[:12]}"})
        body, notes = self.session_body(spec)
        for attempt in range(self.settings.submit_attempts):
            try:
                data = self._request("POST", "/sessions", body=body, ambiguous_ok=True)
                return self._remote(data, notes)
            except _Unreached:
                if self._locate is None or attempt + 1 == self.settings.submit_attempts:
                    raise
            except _Ambiguous:
                if (found := self._created_meanwhile(body.get("name"))) is not None:
                    return self._remote(found, notes)
                time.sleep(self.settings.backoff * 2**attempt)
            self._follow()  # the server may have stopped as it was located (our local gateway, idle)
        raise EngineError(
            f"Could not create a session on fabric '{self.fabric_name}': the server did not "
            f"answer after {self.settings.submit_attempts} attempts. Try again in a moment."
        )

    def _created_meanwhile(self, name: str | None) -> dict[str, Any] | None:
        """After an unclear answer to a create, the session named ``name`` if the server made it.
        A server that moves (see ``locate``) and can no longer be reached took it along as it stopped."""
        if name is None:
            return None
        try:
            return self._find_session(name)
        except _Unreached:
            if self._locate is None:
                raise
            return None

    def _find_session(self, name: str) -> dict[str, Any] | None:
        data = self._request("GET", "/sessions", params={"size": 1000})
        return next((s for s in data.get("sessions", []) if s.get("name") == name), None)

    def _remote(self, data: Mapping[str, Any], notes: list[str] | tuple[str, ...] = ()) -> RemoteSession:
        raw = str(data.get("state", "unknown"))
        return RemoteSession(
            id=str(data["id"]),
            state=_SESSION_STATES.get(raw, SessionState.ENDED),
            raw_state=raw,
            app_id=data.get("appId"),
            notes=tuple(notes),
        )

    def list_sessions(self, size: int = 100) -> list[dict[str, Any]]:
        """The server's sessions (the first ``size``), as Livy describes them."""
        return list(self._request("GET", "/sessions", params={"size": size}).get("sessions", []))

    def session(self, session_id: str, wait: float = 0.0) -> RemoteSession:
        """The session now; with ``wait`` a gateway that long-polls answers once its state changes."""
        if wait > 0 and self.supports_long_poll:
            path, params = f"/sessions/{session_id}", {"wait": f"{wait:.3f}"}
            data = self._request("GET", path, params=params, read_timeout=self.settings.read_timeout + wait)
            return self._remote(data)
        return self._remote(self._request("GET", f"/sessions/{session_id}"))

    def logs(self, session_id: str, size: int = 100) -> list[str]:
        data = self._request("GET", f"/sessions/{session_id}/log", params={"size": size})
        return [str(line) for line in data.get("log", [])]

    def submit_batch(self, file: str, args: list[str], name: str, conf: Mapping[str, str]) -> int:
        """Start a batch (``spark-submit`` of ``file``, a path the Livy server can read)."""
        self._follow()
        body = {"file": file, "args": list(args), "name": name, "conf": dict(conf)}
        if self.settings.proxy_user:
            body["proxyUser"] = self.settings.proxy_user
        return int(self._request("POST", "/batches", body=body)["id"])

    def batch(self, batch_id: int, log_lines: int = 200) -> tuple[str, list[str]]:
        """A batch's state (``running``, ``success``, ``dead``...) and the end of its log."""
        state = self._request("GET", f"/batches/{batch_id}/state")["state"]
        log = self._request("GET", f"/batches/{batch_id}/log", params={"size": log_lines, "from": -1})
        return str(state), [str(line) for line in log.get("log", [])]

    def keepalive(self, session_id: str) -> None:
        """Reset Livy's idle timer, which counts from the last submit, cancel or completion."""
        self._request(
            "POST", f"/sessions/{session_id}/completion", body={"code": "", "kind": "pyspark", "cursor": 0}
        )

    def complete(self, session_id: str, code: str, cursor: int, kind: str = "pyspark") -> list[str]:
        data = self._request(
            "POST", f"/sessions/{session_id}/completion", body={"code": code, "kind": kind, "cursor": cursor}
        )
        return [str(c) for c in data.get("candidates", [])]

    def close_session(self, session_id: str) -> None:
        with contextlib.suppress(SessionGone):
            self._request("DELETE", f"/sessions/{session_id}", read_timeout=self.settings.delete_timeout)

    def close(self) -> None:
        self._http.close()

    # -- statements -------------------------------------------------------------------------

    def submit(self, session_id: str, code: str, kind: str, run_id: str) -> StatementStatus:
        """POST a statement; never sends it twice (see the module docstring)."""
        body = {"code": code + run_marker(kind, run_id), "kind": kind}
        params, read_timeout = None, None
        if self.settings.submit_wait > 0 and self.supports_long_poll:
            params = {"wait": f"{self.settings.submit_wait:.3f}"}
            read_timeout = self.settings.read_timeout + self.settings.submit_wait
        reason = ""
        for attempt in range(self.settings.submit_attempts):
            try:
                data = self._request(
                    "POST",
                    f"/sessions/{session_id}/statements",
                    body=body,
                    params=params,
                    read_timeout=read_timeout,
                    ambiguous_ok=True,
                )
                return self._status(data)
            except _Ambiguous as exc:
                reason = exc.reason
                found = self._find_statement(session_id, run_id, reason)
                if found is not None:
                    return self._status(found)
                time.sleep(self.settings.backoff * 2**attempt)
        raise EngineError(
            f"The statement could not be sent to fabric '{self.fabric_name}' ({reason}). It was "
            "checked not to be running there; run the cell again."
        )

    def _find_statement(self, session_id: str, run_id: str, reason: str) -> dict[str, Any] | None:
        """The statement carrying ``run_id``'s marker, if the server has it."""
        params = {"order": "desc", "size": 100} if self.server_version() >= (0, 8, 0) else None
        try:
            data = self._request("GET", f"/sessions/{session_id}/statements", params=params)
        except SessionGone:
            raise
        except EngineError as exc:
            raise EngineError(
                f"Sending a statement to fabric '{self.fabric_name}' failed ({reason}) and the "
                f"server could not be asked whether it arrived ({exc}). It was not sent again, "
                "so it runs at most once; check with `%fabric status` before running it again."
            ) from None
        suffix = f"prophecy-run: {run_id}"
        return next(
            (s for s in data.get("statements", []) if str(s.get("code", "")).rstrip().endswith(suffix)), None
        )

    def poll(self, session_id: str, statement_id: str, wait: float = 0.0) -> StatementStatus:
        """One GET of the statement; with ``wait`` a gateway that supports it long-polls."""
        params = None
        read_timeout = None
        if wait > 0 and self.supports_long_poll:
            params = {"wait": f"{wait:.3f}"}
            read_timeout = self.settings.read_timeout + wait
        data = self._request(
            "GET",
            f"/sessions/{session_id}/statements/{statement_id}",
            params=params,
            read_timeout=read_timeout,
        )
        return self._status(data)

    def cancel(self, session_id: str, statement_id: str) -> None:
        """Cancel one statement (idempotent, so an unclear answer is simply asked again)."""
        for attempt in range(self.settings.submit_attempts):
            try:
                self._request(
                    "POST", f"/sessions/{session_id}/statements/{statement_id}/cancel", ambiguous_ok=True
                )
                return
            except _Ambiguous:
                time.sleep(self.settings.backoff * 2**attempt)
        raise EngineError(f"Fabric '{self.fabric_name}' did not confirm the cancel; try again.")

    def _status(self, data: Mapping[str, Any]) -> StatementStatus:
        raw = str(data.get("state"))
        output = data.get("output")
        state = _STATEMENT_STATES.get(raw)
        result = None
        if raw == "available":
            result = output_to_result(output)
            state = RunState.FINISHED if result.ok else RunState.FAILED
        elif raw == "cancelled":
            result = Result.of_error("Cancelled", "The statement was cancelled.")
        elif state is None:
            raise EngineError(f"Fabric '{self.fabric_name}' reported an unknown statement state '{raw}'.")
        progress = data.get("progress")
        return StatementStatus(
            id=str(data["id"]),
            state=state,
            progress=None if progress is None else float(progress),
            detail=data.get("detail"),
            result=result,
            started_ms=int(data.get("started") or 0),
            completed_ms=int(data.get("completed") or 0),
        )


class _BearerAuth(requests.auth.AuthBase):
    def __init__(self, token: str):
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        return "<bearer token>"


def output_to_result(output: Mapping[str, Any] | None) -> Result:
    """A Livy statement output as a Result."""
    if not output:
        return Result.of_text("")
    if output.get("status") == "error":
        return Result.of_error(
            str(output.get("ename", "Error")),
            str(output.get("evalue", "")),
            [str(line) for line in output.get("traceback") or []],
        )
    data = output.get("data") or {}
    text = str(data.get("text/plain", ""))
    if "image/png" in data:
        return Result(ResultKind.IMAGE, text=text, image_png=base64.b64decode(data["image/png"]))
    if TABLE_MIME in data:
        return _livy_table(data[TABLE_MIME])
    payload = data.get("application/json")
    if isinstance(payload, dict) and {"schema", "data"} <= payload.keys():
        from prophecy_jupyter.results.frames import frame_from_rows  # pandas, on first use
        from prophecy_jupyter.results.schema import columns

        return Result.of_table(frame_from_rows(payload["data"], columns(payload["schema"]), None))
    if payload is not None:
        return Result.of_text(json.dumps(payload, indent=2))
    if "text/html" in data:
        return Result(ResultKind.HTML, text=text, html=str(data["text/html"]))
    return Result.of_text(text)


def _livy_table(table: Mapping[str, Any]) -> Result:
    from prophecy_jupyter.results.frames import frame_from_rows  # pandas, on first use
    from prophecy_jupyter.results.schema import Column

    cols = []
    for header in table.get("headers", []):
        kind = str(header.get("type", "STRING_TYPE"))
        nested = kind in ("MAP_TYPE", "ARRAY_TYPE")
        spark_type = _LIVY_TABLE_TYPES.get(kind, {"type": "nested"} if nested else "string")
        cols.append(Column(str(header.get("name")), spark_type, True))
    return Result.of_table(frame_from_rows(table.get("data", []), cols, None))
