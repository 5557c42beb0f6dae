"""Parsing helpers shared by the commands."""

from __future__ import annotations

import getpass
import json
import sys
from pathlib import Path
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


def read_secret(prompt: str, from_file: Path | None = None) -> str:
    """A secret from stdin (when piped) or a no-echo prompt; never from the command line. With
    ``from_file``, the file's content (a private key); an encrypted key's passphrase is then read
    from stdin or a prompt and kept after the key."""
    if from_file is not None:
        try:
            secret = from_file.read_text().strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"cannot read {from_file}: {exc}") from None
        if "BEGIN ENCRYPTED PRIVATE KEY" in secret:
            secret += "\n" + read_secret(f"Passphrase of {from_file.name}: ")
    else:
        secret = getpass.getpass(prompt) if sys.stdin.isatty() else sys.stdin.read().rstrip("\r\n")
    if not secret:
        raise ValueError("the secret is empty")
    return secret


def add_secret_file(parser) -> None:
    """``--from-file PATH``: the secret is that file's content (a PEM private key)."""
    parser.add_argument(
        "--from-file",
        type=Path,
        metavar="PATH",
        help="Read the secret from this file (a PEM private key for key-pair auth); an encrypted "
        "key's passphrase is asked for.",
    )
