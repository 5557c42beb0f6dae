"""Livy's error answers, in the body shapes its server really sends."""

from __future__ import annotations


class LivyError(Exception):
    """An HTTP error whose body is either ``{"msg": ...}`` or a bare JSON string."""

    def __init__(self, status: int, message: str, bare: bool = False):
        super().__init__(message)
        self.status = status
        self.message = message
        self.bare = bare

    @property
    def body(self) -> object:
        return self.message if self.bare else {"msg": self.message}


def session_not_found(session_id: object) -> LivyError:
    return LivyError(404, f"Session '{session_id}' not found.")


def statement_not_found() -> LivyError:
    return LivyError(404, "Statement not found", bare=True)


def batch_not_found(batch_id: object) -> LivyError:
    return LivyError(404, f"Session '{batch_id}' not found.")


def bad_request(message: str) -> LivyError:
    """What Livy answers when its JSON parser rejects a body: a bare string."""
    return LivyError(400, message, bare=True)


def rejected(message: str) -> LivyError:
    """What Livy answers when a ``require(...)`` fails: ``{"msg": ...}``."""
    return LivyError(400, message)


def not_running(state: str) -> LivyError:
    return LivyError(500, f"java.lang.IllegalStateException: Session is in state {state}", bare=True)
