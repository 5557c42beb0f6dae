"""Parsing helpers shared by the commands."""

from __future__ import annotations

import getpass
import json
import sys
from typing import Any


def key_values(pairs: list[str], option: str) -> dict[str, str]:
    """``["K=V", ...]`` as a dict; a pair without '=' is an error naming the option."""
    result = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{option} takes KEY=VALUE, not {pair!r}")
        result[key.strip()] = value
    return result


def json_values(pairs: list[str], option: str) -> dict[str, Any]:
    """``["NAME=JSON", ...]`` as a dict of parsed JSON objects."""
    result = {}
    for name, raw in key_values(pairs, option).items():
        try:
            value = json.loads(raw)
        except ValueError as exc:
            raise ValueError(f"{option} {name}: not JSON ({exc})") from None
        if not isinstance(value, dict):
            raise ValueError(f"{option} {name}: expected a JSON object")
        result[name] = value
    return result


def read_secret(prompt: str) -> str:
    """A secret from stdin (when piped) or a no-echo prompt; never from the command line."""
    secret = getpass.getpass(prompt) if sys.stdin.isatty() else sys.stdin.read().rstrip("\r\n")
    if not secret:
        raise ValueError("the secret is empty")
    return secret
