"""The one error tree: every kind a surface tells apart has an HTTP status, and an API answer turns
back into the same kind with what it carries (the kernel's and the hub's clients rely on it)."""

from __future__ import annotations

import pytest

from prophecy_jupyter import errors

KINDS = [
    errors.Invalid("Bad name.", "name"),
    errors.NotFound("No fabric 'x'."),
    errors.AccessDenied("Only admins."),
    errors.Conflict("Exists."),
    errors.LimitReached("Too many sessions."),
    errors.Unavailable("Down."),
    errors.EngineError("Unreachable."),
    errors.AuthenticationError("Refused."),
    errors.SessionGone("Gone."),
    errors.StatementLost("Lost."),
    errors.RemoteError("NameError: x"),
    errors.VaultError("Cannot decrypt."),
    errors.EndpointChanged("New address."),
    errors.GitError("Push refused."),
    errors.GitConflict("Pulling main conflicts in 1 file(s): a.py.", ["a.py"]),
]


@pytest.mark.parametrize("exc", KINDS, ids=lambda exc: type(exc).__name__)
def test_an_answer_turns_back_into_the_error_it_was(exc):
    status = errors.http_status(exc)
    assert status is not None and 400 <= status < 600
    back = errors.from_answer(status, errors.to_answer(exc))
    assert type(back) is type(exc) and str(back) == str(exc)
    assert getattr(back, "field", None) == getattr(exc, "field", None)
    assert getattr(back, "files", None) == getattr(exc, "files", None)


def test_an_answer_from_elsewhere_is_read_by_its_status():
    assert type(errors.from_answer(502, {"message": "Bad gateway"})) is errors.Unavailable
    assert type(errors.from_answer(401, {})) is errors.AccessDenied
    assert type(errors.from_answer(418, {})) is errors.ProphecyError
    assert errors.http_status(ValueError("internal")) is None
