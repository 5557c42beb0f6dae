"""Teams, fabrics, credentials and projects kept by the hub service, as a user's server sees them.

On a JupyterHub, one service of ours (``jupyter prophecy hub-service``) holds the store and the
vault key. A user's server reaches it with the server's own hub token, which acts as that user
only: it lists the user's teams' fabrics and projects, stores and deletes the user's credentials,
and gets the user's own secret when one of the user's runs needs it. The server never holds the
database URL, the master key or anyone else's secret. These classes have the methods of the local
services they stand for (``TeamService``, ``FabricService``, ``ProjectRegistry``), so the session
service, the handlers and the CLI work on either.
"""

from __future__ import annotations

import base64
import datetime
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from prophecy_jupyter import errors
from prophecy_jupyter.services.credentials import CredentialStatus
from prophecy_jupyter.services.fabrics import Fabric
from prophecy_jupyter.services.project_registry import Project
from prophecy_jupyter.services.teams import MemberView, TeamView
from prophecy_jupyter.vault.keys import VaultKey
from prophecy_jupyter.vault.sealing import Sealer

CACHE_KEY_SECONDS = 300.0


def _q(part: str) -> str:
    return quote(part, safe="")


def _status(body: dict[str, Any]) -> CredentialStatus:
    updated = body.get("updated_at")
    when = datetime.datetime.fromisoformat(updated.removesuffix("Z")) if updated else None
    return CredentialStatus(bool(body.get("set")), when, body.get("given_for"))


class HubClient:
    """The hub service's API, as the user who owns this server's hub token."""

    def __init__(self, url: str, token: str, owner: str, timeout: float = 30.0, ca_bundle: str | None = None):
        self.url = url.rstrip("/") + "/api/v1"
        self.owner = owner
        self.timeout = timeout
        self._http = requests.Session()
        self._http.headers["Authorization"] = f"token {token}"
        retry = Retry(
            total=3,
            backoff_factor=0.2,
            status_forcelist=(502, 503, 504),
            allowed_methods={"GET", "PUT", "DELETE"},
        )
        self._http.mount("http://", HTTPAdapter(max_retries=retry))
        self._http.mount("https://", HTTPAdapter(max_retries=retry))
        self._verify: str | bool = ca_bundle or True
        self._keys: dict[str, tuple[float, Sealer]] = {}
        self._lock = threading.Lock()

    def as_owner(self, user: str) -> None:
        """This server speaks to the hub service for its owner only."""
        if user != self.owner:
            raise errors.AccessDenied(
                f"This server reaches the team's fabrics and credentials as {self.owner} only; "
                f"{user}, use your own server."
            )

    def call(self, method: str, path: str, body: Any = None, user: str | None = None) -> Any:
        """One request; an error the service answered is raised as the same error here."""
        if user is not None:
            self.as_owner(user)
        try:
            response = self._http.request(
                method, self.url + path, json=body, timeout=(5, self.timeout), verify=self._verify
            )
        except requests.RequestException as exc:
            raise errors.Unavailable(
                f"The Prophecy hub service did not answer ({type(exc).__name__}); try again in a moment."
            ) from None
        if response.status_code >= 400:
            try:
                answer = response.json()
            except ValueError:
                answer = {"message": f"The hub service answered HTTP {response.status_code}."}
            if response.status_code == 401 or (response.status_code == 403 and not answer.get("reason")):
                answer["message"] = f"The hub service refused this server's token: {answer.get('message')}"
            raise errors.from_answer(response.status_code, answer)
        return response.json() if response.content else None

    def cache_key(self, user: str) -> Sealer:
        """The sealer of the user's own cache key (asked of the service every few minutes)."""
        self.as_owner(user)
        with self._lock:
            cached = self._keys.get(user)
        if cached and time.monotonic() - cached[0] < CACHE_KEY_SECONDS:
            return cached[1]
        answer = self.call("GET", "/cache-key", user=user)
        sealer = Sealer(VaultKey(base64.urlsafe_b64decode(answer["key"]), "the hub service"))
        with self._lock:
            self._keys[user] = (time.monotonic(), sealer)
        return sealer

    def close(self) -> None:
        self._http.close()


class HubTeams:
    """``TeamService`` over the hub service (hub groups are teams there)."""

    def __init__(self, hub: HubClient):
        self.hub = hub

    def roles(self, user: str) -> dict[str, str]:
        return {t["name"]: t["role"] for t in self.hub.call("GET", "/teams", user=user)["teams"]}

    def teams_of(self, user: str) -> list[TeamView]:
        return [TeamView(name, role) for name, role in sorted(self.roles(user).items())]

    def require_member(self, user: str, team: str) -> str:
        return self.hub.call("GET", f"/teams/{_q(team)}", user=user)["role"]

    def require_admin(self, user: str, team: str) -> None:
        if self.require_member(user, team) != "admin":
            raise errors.AccessDenied(f"Only admins of team '{team}' can do this.")

    def create(self, user: str, name: str) -> TeamView:
        answer = self.hub.call("POST", "/teams", {"name": name}, user=user)
        return TeamView(answer["name"], answer["role"])

    def delete(self, user: str, name: str) -> None:
        self.hub.call("DELETE", f"/teams/{_q(name)}", user=user)

    def members(self, user: str, team: str) -> list[MemberView]:
        answer = self.hub.call("GET", f"/teams/{_q(team)}/members", user=user)
        return [MemberView(m["username"], m["role"]) for m in answer["members"]]

    def set_member(self, actor: str, team: str, username: str, role: str) -> MemberView:
        answer = self.hub.call("PUT", f"/teams/{_q(team)}/members/{_q(username)}", {"role": role}, user=actor)
        return MemberView(answer["username"], answer["role"])

    def remove_member(self, actor: str, team: str, username: str) -> None:
        self.hub.call("DELETE", f"/teams/{_q(team)}/members/{_q(username)}", user=actor)


class HubFabrics:
    """``FabricService`` over the hub service: the user's own secret comes only for their runs."""

    def __init__(self, hub: HubClient):
        self.hub = hub
        self._listeners: list[Callable[[str], None]] = []

    def list(self, user: str) -> list[Fabric]:
        return [Fabric.model_validate(f) for f in self.hub.call("GET", "/fabrics", user=user)["fabrics"]]

    def get(self, user: str, ref: str) -> Fabric:
        return Fabric.model_validate(self.hub.call("GET", f"/fabrics/{_q(ref)}", user=user))

    def create(self, user: str, team: str, data: Any) -> Fabric:
        return Fabric.model_validate(self.hub.call("POST", f"/teams/{_q(team)}/fabrics", data, user=user))

    def update(self, user: str, ref: str, data: Any) -> Fabric:
        return Fabric.model_validate(self.hub.call("PATCH", f"/fabrics/{_q(ref)}", data, user=user))

    def delete(self, user: str, ref: str) -> None:
        self.hub.call("DELETE", f"/fabrics/{_q(ref)}", user=user)

    def secret_fabric(self, user: str, ref: str) -> Fabric:
        fabric = self.get(user, ref)
        if not fabric.secret_needed:
            raise errors.Invalid(f"Fabric '{fabric.ref}' takes no secret with its settings.")
        return fabric

    def _credential(self, fabric: Fabric | str) -> str:
        return f"/fabrics/{_q(fabric if isinstance(fabric, str) else fabric.id)}/credential"

    def set_secret(self, user: str, ref: str, secret: str) -> tuple[Fabric, CredentialStatus]:
        fabric = self.secret_fabric(user, ref)
        status = _status(self.hub.call("PUT", self._credential(fabric), {"secret": secret}, user=user))
        self._changed(fabric.scope)
        return fabric, status

    def confirm_secret(self, user: str, ref: str) -> tuple[Fabric, CredentialStatus]:
        fabric = self.secret_fabric(user, ref)
        status = _status(self.hub.call("POST", self._credential(fabric) + "/confirm", user=user))
        self._changed(fabric.scope)
        return fabric, status

    def delete_secret(self, user: str, ref: str) -> bool:
        fabric = self.get(user, ref)
        self.hub.call("DELETE", self._credential(fabric), user=user)
        self._changed(fabric.scope)
        return True

    def on_secret_change(self, listener: Callable[[str], None]) -> None:
        self._listeners.append(listener)

    def _changed(self, scope: str) -> None:
        for listener in self._listeners:
            listener(scope)

    def credential_status(self, user: str, fabric: Fabric) -> CredentialStatus | None:
        if not fabric.secret_needed:
            return None
        return _status(self.hub.call("GET", self._credential(fabric), user=user))

    def secret(self, user: str, fabric: Fabric) -> str | None:
        """The user's own secret, for one of their runs (the service checks its endpoint)."""
        return self.hub.call("GET", self._credential(fabric) + "/secret", user=user)["secret"]

    def secret_set_at(self, user: str, fabric: Fabric) -> datetime.datetime | None:
        status = self.credential_status(user, fabric)
        return status.updated_at if status else None


class HubProjects:
    """``ProjectRegistry`` over the hub service."""

    def __init__(self, hub: HubClient):
        self.hub = hub

    @staticmethod
    def _project(body: dict[str, Any]) -> Project:
        return Project(
            body["id"], body["team"], body["name"], body["url"], body["provider"], body["default_branch"]
        )

    def list(self, user: str) -> list[Project]:
        return [self._project(p) for p in self.hub.call("GET", "/projects", user=user)["projects"]]

    def get(self, user: str, ref: str) -> Project:
        return self._project(self.hub.call("GET", f"/projects/{_q(ref)}", user=user))

    def create(self, user: str, team: str, data: Any) -> Project:
        return self._project(self.hub.call("POST", f"/teams/{_q(team)}/projects", data, user=user))

    def delete(self, user: str, ref: str) -> Project:
        project = self.get(user, ref)
        self.hub.call("DELETE", f"/projects/{_q(project.id)}", user=user)
        return project

    def set_token(self, user: str, ref: str, token: str, username: str | None = None) -> Project:
        project = self.get(user, ref)
        body = {"token": token, "username": username}
        self.hub.call("PUT", f"/projects/{_q(project.id)}/token", body, user=user)
        return project

    def token(self, user: str, project: Project) -> dict[str, Any] | None:
        return self.hub.call("GET", f"/projects/{_q(project.id)}/token/secret", user=user)["token"]

    def token_status(self, user: str, project: Project) -> CredentialStatus:
        return _status(self.hub.call("GET", f"/projects/{_q(project.id)}/token", user=user))

    def delete_token(self, user: str, project: Project) -> None:
        self.hub.call("DELETE", f"/projects/{_q(project.id)}/token", user=user)
