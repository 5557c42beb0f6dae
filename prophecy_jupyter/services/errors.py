"""Domain errors, and the one place that says which HTTP status each kind of error answers."""

from __future__ import annotations

from prophecy_jupyter.engines.base import EngineError
from prophecy_jupyter.git.repository import Conflict as GitConflict
from prophecy_jupyter.git.repository import GitError
from prophecy_jupyter.vault.keys import VaultError


class ServiceError(Exception):
    """A request the services refuse, with a message meant for the user."""


class Invalid(ServiceError):
    """Bad input (400). ``field`` names what is wrong when one field is."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class AccessDenied(ServiceError):
    """The user may not do this (403)."""


class NotFound(ServiceError):
    """No such thing, or not one the user may see (404)."""


class Conflict(ServiceError):
    """It exists already, or the change would break something (409)."""


class LimitReached(ServiceError):
    """A per-user limit is reached (429)."""


class Unavailable(ServiceError):
    """A service we depend on does not answer (503): trying again later may work."""


_STATUS: list[tuple[type[Exception], int]] = [
    (Invalid, 400),
    (AccessDenied, 403),
    (NotFound, 404),
    (Conflict, 409),
    (LimitReached, 429),
    (Unavailable, 503),
    (VaultError, 409),
    (EngineError, 502),
    (GitConflict, 409),
    (GitError, 502),
]


def http_status(exc: BaseException | None) -> int | None:
    """The HTTP status an error meant for the user answers; None for an internal error."""
    return next((code for cls, code in _STATUS if isinstance(exc, cls)), None)
