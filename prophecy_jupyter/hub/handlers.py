"""The hub service's REST API (``<service prefix>api/v1``): what users' servers ask of the store.

Every request carries a hub token (``Authorization: token ...``, never a cookie) and acts as the
token's user, who must have the ``access:services!service=<name>`` scope. Handlers only parse, call
the services and serialize; the services decide what the user may see and do, as they do in a
single-user install. A user gets their own secrets only.
"""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Callable
from typing import Any

from jupyterhub.services.auth import HubAuthenticated
from tornado import web

from prophecy_jupyter import errors
from prophecy_jupyter.server.json_body import json_object
from prophecy_jupyter.services.runtime import Services

MAX_BODY = 1024 * 1024


def authenticated(method: Callable[..., Any]) -> Callable[..., Any]:
    """Only for a hub user's valid token: 401 otherwise (whatever the method)."""

    @functools.wraps(method)
    def checked(self: ServiceHandler, *args: Any, **kwargs: Any) -> Any:
        if not self.current_user:
            raise web.HTTPError(401, "Send a hub token of a user with access to this service.")
        return method(self, *args, **kwargs)

    return checked


class ServiceHandler(HubAuthenticated, web.RequestHandler):
    """A hub user's request: their name, a JSON body, errors as ``{message, reason, field}``."""

    @property
    def services(self) -> Services:
        return self.settings["prophecy_services"]

    @property
    def user(self) -> str:
        return self.current_user["name"]

    def get_current_user(self):
        model = super().get_current_user()
        if model is not None and model.get("kind", "user") != "user":
            return None  # another service's token acts for nobody here
        return model

    def prepare(self) -> None:
        if len(self.request.body or b"") > MAX_BODY:
            raise web.HTTPError(413, "The request body is too large.")

    def body(self) -> dict[str, Any]:
        """The request's JSON object (see ``json_body``)."""
        return json_object(self.request.body)

    def text(self, data: dict[str, Any], name: str, required: bool = True) -> str | None:
        value = data.get(name)
        if value is None and not required:
            return None
        if not isinstance(value, str):
            raise errors.Invalid(f"{name}: expected a string", name)
        return value

    def reply(self, body: Any, status: int = 200) -> None:
        self.set_status(status)
        if status == 204:
            self.finish()
        else:
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps(body))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        mapped = errors.http_status(exc)
        if mapped is not None:
            self.set_status(mapped)
            body = errors.to_answer(exc)
        elif isinstance(exc, web.HTTPError):
            body = {"message": exc.log_message or self._reason, "reason": None, "field": None}
        else:
            body = {"message": "Internal error; see the hub service's log.", "reason": None, "field": None}
        if self.get_status() == 401:
            self.set_header("WWW-Authenticate", "token")
        if self.get_status() == 405:
            allowed = [m.upper() for m in ("get", "post", "put", "patch", "delete") if m in vars(type(self))]
            self.set_header("Allow", ", ".join(allowed))
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))

    def log_exception(self, typ, value, tb) -> None:
        if errors.http_status(value) is None:
            super().log_exception(typ, value, tb)


class TeamsHandler(ServiceHandler):
    @authenticated
    def get(self) -> None:
        self.reply({"teams": [t.to_json() for t in self.services.teams.teams_of(self.user)]})

    @authenticated
    def post(self) -> None:
        self.reply(self.services.teams.create(self.user, self.text(self.body(), "name")).to_json(), 201)


class TeamHandler(ServiceHandler):
    @authenticated
    def get(self, team: str) -> None:
        self.reply({"name": team, "role": self.services.teams.require_member(self.user, team)})

    @authenticated
    def delete(self, team: str) -> None:
        self.services.teams.delete(self.user, team)
        self.reply(None, 204)


class MembersHandler(ServiceHandler):
    @authenticated
    def get(self, team: str) -> None:
        self.reply({"members": [m.to_json() for m in self.services.teams.members(self.user, team)]})


class MemberHandler(ServiceHandler):
    @authenticated
    def put(self, team: str, username: str) -> None:
        role = self.text(self.body(), "role")
        self.reply(self.services.teams.set_member(self.user, team, username, role).to_json())

    @authenticated
    def delete(self, team: str, username: str) -> None:
        self.services.teams.remove_member(self.user, team, username)
        self.reply(None, 204)


class FabricsHandler(ServiceHandler):
    @authenticated
    def get(self) -> None:
        self.reply({"fabrics": [f.to_json() for f in self.services.fabrics.list(self.user)]})


class TeamFabricsHandler(ServiceHandler):
    @authenticated
    def post(self, team: str) -> None:
        self.reply(self.services.fabrics.create(self.user, team, self.body()).to_json(), 201)


class FabricHandler(ServiceHandler):
    @authenticated
    def get(self, ref: str) -> None:
        self.reply(self.services.fabrics.get(self.user, ref).to_json())

    @authenticated
    def patch(self, ref: str) -> None:
        self.reply(self.services.fabrics.update(self.user, ref, self.body()).to_json())

    @authenticated
    def delete(self, ref: str) -> None:
        self.services.fabrics.delete(self.user, ref)
        self.reply(None, 204)


class CredentialHandler(ServiceHandler):
    """The user's own secret for a fabric: set, status, delete (never read back here)."""

    @authenticated
    def get(self, ref: str) -> None:
        fabric = self.services.fabrics.secret_fabric(self.user, ref)
        self.reply(self.services.fabrics.credential_status(self.user, fabric).to_json())

    @authenticated
    def put(self, ref: str) -> None:
        _, status = self.services.fabrics.set_secret(self.user, ref, self.text(self.body(), "secret"))
        self.reply(status.to_json())

    @authenticated
    def delete(self, ref: str) -> None:
        self.services.fabrics.delete_secret(self.user, ref)
        self.reply(None, 204)


class CredentialConfirmHandler(ServiceHandler):
    @authenticated
    def post(self, ref: str) -> None:
        self.reply(self.services.fabrics.confirm_secret(self.user, ref)[1].to_json())


class CredentialSecretHandler(ServiceHandler):
    """The user's own secret, for one of the user's runs (their server asks with their token)."""

    @authenticated
    def get(self, ref: str) -> None:
        fabric = self.services.fabrics.get(self.user, ref)
        self.set_header("Cache-Control", "no-store")
        self.reply({"secret": self.services.fabrics.secret(self.user, fabric)})


class ProjectsHandler(ServiceHandler):
    @authenticated
    def get(self) -> None:
        self.reply({"projects": [p.to_json() for p in self.services.registry.list(self.user)]})


class TeamProjectsHandler(ServiceHandler):
    @authenticated
    def post(self, team: str) -> None:
        self.reply(self.services.registry.create(self.user, team, self.body()).to_json(), 201)


class ProjectHandler(ServiceHandler):
    @authenticated
    def get(self, ref: str) -> None:
        self.reply(self.services.registry.get(self.user, ref).to_json())

    @authenticated
    def delete(self, ref: str) -> None:
        self.services.registry.delete(self.user, ref)
        self.reply(None, 204)


class ProjectTokenHandler(ServiceHandler):
    @authenticated
    def get(self, ref: str) -> None:
        registry = self.services.registry
        self.reply(registry.token_status(self.user, registry.get(self.user, ref)).to_json())

    @authenticated
    def put(self, ref: str) -> None:
        data = self.body()
        token, username = self.text(data, "token"), self.text(data, "username", required=False)
        registry = self.services.registry
        project = registry.set_token(self.user, ref, token, username)
        self.reply(registry.token_status(self.user, project).to_json())

    @authenticated
    def delete(self, ref: str) -> None:
        registry = self.services.registry
        registry.delete_token(self.user, registry.get(self.user, ref))
        self.reply(None, 204)


class ProjectTokenSecretHandler(ServiceHandler):
    @authenticated
    def get(self, ref: str) -> None:
        registry = self.services.registry
        self.set_header("Cache-Control", "no-store")
        self.reply({"token": registry.token(self.user, registry.get(self.user, ref))})


class CacheKeyHandler(ServiceHandler):
    """The user's own key for their server's code cache (derived from the vault's; it opens
    nothing else)."""

    @authenticated
    def get(self) -> None:
        key = self.services.cache_key(self.user).key
        self.set_header("Cache-Control", "no-store")
        self.reply({"key": base64.urlsafe_b64encode(key.material).decode(), "key_id": key.key_id})


ROUTES: list[tuple[str, type[ServiceHandler]]] = [
    (r"teams", TeamsHandler),
    (r"teams/([^/]+)", TeamHandler),
    (r"teams/([^/]+)/members", MembersHandler),
    (r"teams/([^/]+)/members/([^/]+)", MemberHandler),
    (r"teams/([^/]+)/fabrics", TeamFabricsHandler),
    (r"teams/([^/]+)/projects", TeamProjectsHandler),
    (r"fabrics", FabricsHandler),
    (r"fabrics/([^/]+)", FabricHandler),
    (r"fabrics/([^/]+)/credential", CredentialHandler),
    (r"fabrics/([^/]+)/credential/confirm", CredentialConfirmHandler),
    (r"fabrics/([^/]+)/credential/secret", CredentialSecretHandler),
    (r"projects", ProjectsHandler),
    (r"projects/([^/]+)", ProjectHandler),
    (r"projects/([^/]+)/token", ProjectTokenHandler),
    (r"projects/([^/]+)/token/secret", ProjectTokenSecretHandler),
    (r"cache-key", CacheKeyHandler),
]


def routes(prefix: str) -> list[tuple[str, type[ServiceHandler]]]:
    """The API's routes under the service's prefix (``/services/<name>/``)."""
    base = prefix.rstrip("/") + "/api/v1/"
    return [(base + pattern, handler) for pattern, handler in ROUTES]
