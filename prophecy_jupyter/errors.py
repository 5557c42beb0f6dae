"""The one error tree. Every error a user meets is a :class:`ProphecyError` whose message is meant
for them (what happened, what to do); the kinds below are what the surfaces tell apart, each in one
place: the HTTP status and answer (:func:`http_status`, :func:`to_answer`), an answer back into its
kind (:func:`from_answer`); the CLI prints any of them as one line and exits with 1.

This module imports nothing of the package: any layer may raise from it.
"""

from __future__ import annotations

from typing import Any


class ProphecyError(Exception):
    """An error with a message for the user."""


class Invalid(ProphecyError):
    """Bad input. ``field`` names what is wrong when one field is."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class NotFound(ProphecyError):
    """No such thing, or not one the user may see."""


class AccessDenied(ProphecyError):
    """The user may not do this."""


class Conflict(ProphecyError):
    """It exists already, or the change would break something."""


class LimitReached(ProphecyError):
    """A per-user limit is reached."""


class Unavailable(ProphecyError):
    """A service we depend on does not answer: trying again later may work."""


class EngineError(ProphecyError):
    """A fabric failed, or could not be reached."""


class AuthenticationError(EngineError):
    """The fabric refused the credential (401/403)."""


class SessionGone(EngineError):
    """The remote session no longer exists or has ended; its state is lost."""


class StatementLost(EngineError):
    """The fabric does not know the statement any more."""


class RemoteError(ProphecyError):
    """The user's code failed on the fabric. IPython shows the remote traceback, not ours."""

    def __init__(self, message: str, traceback: list[str] | None = None, name: str | None = None):
        super().__init__(message)
        self.traceback = list(traceback or [])
        self.name = name

    def _render_traceback_(self) -> list[str]:
        lines = [line.rstrip("\n") for line in self.traceback]
        if not lines or (self.name and not lines[-1].startswith(self.name)):
            lines.append(str(self))
        return lines


class VaultError(ProphecyError):
    """The vault cannot be opened, or an entry in it cannot be decrypted."""


class EndpointChanged(VaultError):
    """The secret was given for another endpoint than the one it would be sent to now."""


class GitError(ProphecyError):
    """A git operation failed; the message says why and what to do."""


class GitConflict(GitError):
    """A pull met conflicting changes; ``files`` lists them. Nothing was changed."""

    def __init__(self, message: str, files: list[str]):
        super().__init__(message)
        self.files = files


# Each kind's HTTP status, most specific first.
_STATUS: list[tuple[type[ProphecyError], int]] = [
    (Invalid, 400),
    (AccessDenied, 403),
    (NotFound, 404),
    (Conflict, 409),
    (VaultError, 409),
    (GitConflict, 409),
    (LimitReached, 429),
    (RemoteError, 422),
    (EngineError, 502),
    (GitError, 502),
    (Unavailable, 503),
]


def http_status(exc: BaseException | None) -> int | None:
    """The HTTP status an error meant for the user answers; None for an internal error."""
    return next((status for kind, status in _STATUS if isinstance(exc, kind)), None)


def to_answer(exc: ProphecyError) -> dict[str, Any]:
    """The JSON body an API answers an error with: ``{message, reason, field}`` (and a conflict's
    ``files``)."""
    answer = {"message": str(exc), "reason": type(exc).__name__, "field": getattr(exc, "field", None)}
    if isinstance(exc, GitConflict):
        answer["files"] = exc.files
    return answer


def from_answer(status: int, answer: dict[str, Any]) -> ProphecyError:
    """The error an API's answer stands for (the inverse of :func:`to_answer`)."""
    message = str(answer.get("message") or f"HTTP {status}")
    kind = _BY_NAME.get(str(answer.get("reason")))
    if kind is Invalid or (kind is None and status == 400):
        return Invalid(message, answer.get("field"))
    if kind is GitConflict:
        return GitConflict(message, list(answer.get("files") or []))
    if kind is not None:
        return kind(message)
    if status >= 500:
        return Unavailable(message)
    by_status = {401: AccessDenied, 403: AccessDenied, 404: NotFound, 409: Conflict, 429: LimitReached}
    return by_status.get(status, ProphecyError)(message)


_BY_NAME = {
    kind.__name__: kind
    for kind in (*(k for k, _ in _STATUS), EndpointChanged, AuthenticationError, SessionGone, StatementLost)
}
