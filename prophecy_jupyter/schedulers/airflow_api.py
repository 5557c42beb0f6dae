"""Airflow 3's stable REST API v2 as one user of an airflow fabric: authentication, timeouts,
retries of what is safe to retry, and errors that name the fabric without its secret."""

from __future__ import annotations

import datetime
import json
import re
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from prophecy_jupyter.errors import AuthenticationError, EngineError

API_TIMEOUT = (10.0, 30.0)
"""Connect and read timeouts of every call to Airflow."""
RETRIES = 3
"""Retries of a call that surely did not arrive (refused connection), and of idempotent calls
(GET, PATCH, DELETE) on a broken connection or 502/503/504, with backoff."""
RETRY_STATUSES = frozenset({502, 503, 504})


def error_detail(response: requests.Response) -> str:
    """What an Airflow error answer says (``{"detail": ...}``), short."""
    try:
        body = response.json()
    except ValueError:
        text = re.sub(r"<[^>]+>", " ", response.text or "")
        return " ".join(text.split())[:300] or response.reason or f"HTTP {response.status_code}"
    detail = body.get("detail", body) if isinstance(body, dict) else body
    return (detail if isinstance(detail, str) else json.dumps(detail))[:300]


def parse_time(value: str | None) -> datetime.datetime | None:
    if not value:
        return None
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))


class AirflowApi:
    """Airflow 3's stable REST API (``/api/v2``) as one user of an airflow fabric: a token from
    ``POST /auth/token`` for password auth (asked once per instance, and again if it expires),
    the user's own token for token auth, nothing for none. TLS is verified (the fabric's CA
    bundle, if it has one). Messages name the fabric and never hold the secret or the token."""

    def __init__(self, settings: dict[str, Any], secret: str | None, fabric: str, retries: int = RETRIES):
        self.url = str(settings["url"]).rstrip("/")
        self.auth = settings.get("auth") or "password"
        self.username = settings.get("username")
        self.fabric = fabric
        self._secret = secret
        self._token: str | None = None
        self._verify: str | bool = settings.get("ca_bundle") or True
        self.retries = retries
        if self.auth in ("password", "token") and not secret:
            raise EngineError(
                f"Airflow fabric {fabric} uses {self.auth} auth and you have not set your {self.auth} for "
                f"it: `jupyter prophecy credentials set {fabric}`."
            )
        if self.auth == "password" and not self.username:
            raise EngineError(f"Airflow fabric {fabric} uses password auth but has no username.")
        retry = Retry(
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            backoff_factor=0.5,
            backoff_max=5.0,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=frozenset({"GET", "PATCH", "DELETE", "HEAD"}),
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        self._http = requests.Session()
        adapter = HTTPAdapter(max_retries=retry)
        self._http.mount("http://", adapter)
        self._http.mount("https://", adapter)
        self._http.headers.update({"Accept": "application/json", "User-Agent": "prophecy-jupyter"})

    def scrub(self, text: str) -> str:
        """``text`` without the user's secret or token (as written, or as JSON writes it)."""
        for secret in (self._secret, self._token):
            if secret:
                for form in (secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]):
                    text = text.replace(form, "***")
        return text

    def login(self) -> str:
        """A token for the user (password auth): ``POST /auth/token``."""
        try:
            response = self.send(
                "POST", "/auth/token", "log in", {"username": self.username, "password": self._secret}
            )
        except requests.RequestException as exc:  # logging in again does no harm, but it did not answer
            raise EngineError(
                f"Could not reach Airflow fabric {self.fabric} at {self.url} to log in "
                f"({type(exc).__name__}). Is Airflow's API server up?"
            ) from None
        if response.status_code in (400, 401, 403):
            raise AuthenticationError(
                f"Airflow fabric {self.fabric} refused user {self.username} with your password "
                f"(HTTP {response.status_code}: {self.scrub(error_detail(response))}). Set it again with "
                f"`jupyter prophecy credentials set {self.fabric}`."
            )
        if response.status_code in (404, 405):
            raise EngineError(
                f"Airflow fabric {self.fabric} issues no tokens at {self.url}/auth/token (HTTP "
                f"{response.status_code}): is it Airflow 3's API server? With another auth manager, use "
                "token auth."
            )
        if response.status_code >= 400:
            raise EngineError(
                f"Airflow fabric {self.fabric} could not log in (HTTP {response.status_code}: "
                f"{self.scrub(error_detail(response))})."
            )
        token = self.decode(response, "POST", "/auth/token").get("access_token")
        if not isinstance(token, str) or not token:
            raise EngineError(f"Airflow fabric {self.fabric} answered /auth/token without an access_token.")
        self._token = token
        return token

    def _bearer(self) -> str | None:
        if self.auth == "token":
            return self._secret
        if self.auth == "password":
            return self._token or self.login()
        return None

    def send(
        self, method: str, path: str, what: str, body: Any = None, params: dict[str, Any] | None = None
    ) -> requests.Response:
        """One request (urllib3 retries what is safe to retry); EngineError if Airflow was not reached."""
        headers = {}
        if path != "/auth/token" and (token := self._bearer()):
            headers["Authorization"] = f"Bearer {token}"
        try:
            return self._http.request(
                method,
                self.url + path,
                json=body,
                params=params,
                headers=headers,
                timeout=API_TIMEOUT,
                verify=self._verify,
            )
        except requests.exceptions.SSLError as exc:
            raise EngineError(
                f"TLS verification of {self.url} failed for Airflow fabric {self.fabric} "
                f"({self.scrub(str(exc.args[0] if exc.args else exc))[:300]}). Give the fabric a CA "
                "bundle (ca_bundle), or fix the certificate."
            ) from None
        except requests.RequestException as exc:
            if method == "POST":
                raise  # the caller knows whether it may have arrived
            raise EngineError(
                f"Could not reach Airflow fabric {self.fabric} at {self.url} to {what} "
                f"({type(exc).__name__}, after {self.retries} retries). Is Airflow's API server up?"
            ) from None

    def call(
        self,
        method: str,
        path: str,
        what: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        missing_ok: bool = False,
    ) -> Any:
        """A call's JSON answer (None for 204, and for 404 with ``missing_ok``)."""
        try:
            response = self.send(method, path, what, body, params)
            if response.status_code == 401 and self.auth == "password":
                self._token = None  # expired: log in again, once
                response = self.send(method, path, what, body, params)
        except requests.RequestException as exc:  # a POST that may have arrived is not sent again
            raise EngineError(
                f"The connection to Airflow fabric {self.fabric} broke while asked to {what} "
                f"({type(exc).__name__}); it was not sent again."
            ) from None
        status = response.status_code
        if status in (401, 403):
            raise AuthenticationError(
                f"Airflow fabric {self.fabric} refused to {what} (HTTP {status}: "
                f"{self.scrub(error_detail(response))}). Check your {self.auth} for it (`jupyter prophecy "
                f"credentials set {self.fabric}`) and that your Airflow user may do this."
            )
        if status == 404 and missing_ok:
            return None
        if status >= 400:
            raise EngineError(
                f"Airflow fabric {self.fabric} could not {what} (HTTP {status}: "
                f"{self.scrub(error_detail(response))})."
            )
        if status == 204 or not response.content:
            return None
        return self.decode(response, method, path)

    def decode(self, response: requests.Response, method: str, path: str) -> Any:
        try:
            return response.json()
        except ValueError:
            raise EngineError(
                f"Airflow fabric {self.fabric} answered {method} {path} with something that is not JSON: "
                f"is {self.url} Airflow 3's API server?"
            ) from None

    def version(self) -> str:
        found = self.call("GET", "/api/v2/version", "tell its version")
        if not isinstance(found, dict) or not found.get("version"):
            raise EngineError(f"Airflow fabric {self.fabric}: {self.url}/api/v2/version is not Airflow 3's.")
        return str(found["version"])

    def close(self) -> None:
        self._http.close()
