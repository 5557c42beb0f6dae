"""A request's JSON body, checked before anything reads it: an object, of text only (no lone
surrogates, which no store can keep), nested at most ``MAX_NESTING`` levels."""

from __future__ import annotations

import json
from typing import Any

from prophecy_jupyter import errors

MAX_NESTING = 32


def json_object(raw: bytes | None) -> dict[str, Any]:
    """The body as a JSON object; Invalid (naming the field where it can) otherwise."""
    try:
        data = json.loads(raw or b"{}")
    except RecursionError:
        raise errors.Invalid(f"The body nests deeper than {MAX_NESTING} levels.") from None
    except ValueError as exc:
        raise errors.Invalid(f"The body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise errors.Invalid("The body must be a JSON object.")
    _check(data, "")
    return data


def _check(value: Any, where: str, depth: int = 0) -> None:
    if depth > MAX_NESTING:
        top = where.split(".")[0].split("[")[0]
        raise errors.Invalid(f"The body nests deeper than {MAX_NESTING} levels (under {top}).", top or None)
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise errors.Invalid(
                f"{where or 'body'}: not valid text (a lone surrogate)", where or None
            ) from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _check(key, where, depth + 1)
            _check(item, f"{where}.{key}" if where else key, depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check(item, f"{where}[{index}]", depth + 1)
