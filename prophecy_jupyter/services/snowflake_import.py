"""Fabrics from the Snowflake connections users already keep in ``connections.toml``: one
``snowflake`` fabric per connection, its password, token or private key stored as the importing
user's own credential (fabrics hold no secrets)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prophecy_jupyter.errors import Conflict, Invalid
from prophecy_jupyter.services.fabrics import FabricService
from prophecy_jupyter.services.import_report import ImportReport

# connections.toml keys that become the fabric's settings, as they are named there.
SETTINGS = (
    "account",
    "user",
    "role",
    "warehouse",
    "database",
    "schema",
    "host",
    "port",
    "protocol",
    "login_timeout",
    "network_timeout",
)
# The connector's authenticator → the fabric's auth mode.
AUTH_MODES = {
    "snowflake": "password",
    "snowflake_jwt": "key-pair",
    "oauth": "oauth",
    "programmatic_access_token": "pat",
}
SECRET_KEYS = {"password", "token", "token_file_path", "private_key_file", "private_key_path"}
SECRET_KEYS |= {"private_key_file_pwd", "private_key_passphrase", "private_key"}


def import_snowflake(
    connections: dict[str, Any], names: list[str], fabrics: FabricService, user: str, team: str
) -> ImportReport:
    """Create a fabric per connection (those ``names``, else all), skipping names that exist;
    store the importing user's secrets as their credentials."""
    unknown = [name for name in names if name not in connections]
    if unknown:
        known = ", ".join(sorted(connections)) or "none"
        raise Invalid(f"No connection {', '.join(unknown)} in the file (it has: {known}).", "names")
    report = ImportReport()
    for name in names or list(connections):
        entry = connections[name]
        if not isinstance(entry, dict):
            report.skipped.append(f"{name} (not a table of settings)")
            continue
        authenticator = str(entry.get("authenticator") or "snowflake").lower()
        auth = AUTH_MODES.get(authenticator)
        if auth is None:
            report.skipped.append(
                f"{name} (authenticator {authenticator}: fabrics take password, key pair, OAuth or "
                "programmatic access tokens, which each member brings)"
            )
            continue
        settings = {key: entry[key] for key in SETTINGS if entry.get(key) is not None}
        settings["auth"] = auth
        left_out = sorted(set(entry) - set(SETTINGS) - SECRET_KEYS - {"authenticator"})
        if left_out:
            report.notes.append(f"{name}: {', '.join(left_out)} left out (not fabric settings)")
        try:
            secret = _secret(entry, auth)
            fabric = fabrics.create(user, team, {"name": name, "kind": "snowflake", "settings": settings})
        except Conflict:
            report.skipped.append(f"{team}/{name} (exists)")
            continue
        except Invalid as exc:
            report.skipped.append(f"{name} ({exc})")
            continue
        report.created.append(fabric.ref)
        if secret:
            try:
                fabrics.set_secret(user, fabric.id, secret)
            except Invalid as exc:
                report.notes.append(f"{fabric.ref}: your secret was not stored: {exc}")
                continue
            report.credentials.append(fabric.ref)
    return report


def _secret(entry: dict[str, Any], auth: str) -> str | None:
    """The user's secret that the connection holds, as the fabric's auth mode takes it."""
    if auth == "password":
        return entry.get("password") or None
    if auth in ("oauth", "pat"):
        if entry.get("token"):
            return str(entry["token"])
        path = entry.get("token_file_path")
        return _read(path).strip() if path else None
    key = entry.get("private_key") or (
        _read(path) if (path := entry.get("private_key_file") or entry.get("private_key_path")) else None
    )
    if not key:
        return None
    passphrase = entry.get("private_key_file_pwd") or entry.get("private_key_passphrase")
    return f"{key.strip()}\n{passphrase}" if passphrase else key.strip()


def _read(path: str) -> str:
    try:
        return Path(path).expanduser().read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise Invalid(f"cannot read {path}: {exc}") from None
