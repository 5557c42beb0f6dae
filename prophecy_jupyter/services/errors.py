"""Domain errors; the server maps each kind to one HTTP status in one place."""

from __future__ import annotations


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
