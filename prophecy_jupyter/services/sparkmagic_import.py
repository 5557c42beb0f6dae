"""Fabrics and credentials from a sparkmagic ``config.json``.

Fabrics hold no secrets, so an ``Authorization`` header in ``custom_headers`` becomes the importing
user's own credential (``Bearer`` a token, ``Basic`` a user name and password); other headers and
Spark settings that carry a credential are left out, and the report says so.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any
from urllib.parse import urlsplit

from prophecy_jupyter.errors import Conflict, Invalid
from prophecy_jupyter.kinds.base import LOOPBACK_HTTP, credential_conf, credential_headers
from prophecy_jupyter.services.fabrics import RESOURCE_FIELDS, FabricService
from prophecy_jupyter.services.import_report import ImportReport

KERNEL_KEYS = ("kernel_python_credentials", "kernel_scala_credentials", "kernel_r_credentials")
AUTH = {"none": "none", "basic_access": "basic", "kerberos": "kerberos"}


def _authorization(value: str) -> dict[str, str] | None:
    """``Bearer T`` → bearer auth with token T; ``Basic b64(user:password)`` → basic auth."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() == "bearer" and rest.strip():
        return {"auth": "bearer", "secret": rest.strip()}
    if scheme.lower() == "basic":
        try:
            user, colon, password = base64.b64decode(rest.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        if colon and user and password:
            return {"auth": "basic", "username": user, "secret": password}
    return None


def _headers(config: dict[str, Any], report: ImportReport) -> tuple[dict[str, str], dict[str, str] | None]:
    """The headers a fabric may keep, and the credential an Authorization header carried."""
    headers = {str(k): str(v) for k, v in (config.get("custom_headers") or {}).items()}
    carried = None
    for name in credential_headers(headers):
        value = headers.pop(name)
        found = _authorization(value) if name.lower() == "authorization" else None
        if found is not None:
            carried = found
            report.notes.append(f"custom_headers.{name}: became your own {found['auth']} credential")
        else:
            report.notes.append(f"custom_headers.{name}: carries a credential; set it as yours instead")
    return headers, carried


def fabric_name(url: str) -> str:
    parts = urlsplit(url)
    base = f"livy-{parts.hostname or 'server'}" + (f"-{parts.port}" if parts.port else "")
    return re.sub(r"[^A-Za-z0-9_.-]", "-", base)[:64]


def _endpoints(config: dict[str, Any]) -> list[dict[str, Any]]:
    seen: dict[tuple, dict[str, Any]] = {}
    for key in KERNEL_KEYS:
        entry = config.get(key)
        if not isinstance(entry, dict) or not entry.get("url"):
            continue
        username = entry.get("username") or None
        auth = str(entry.get("auth") or ("Basic_Access" if username else "None")).lower()
        if auth not in AUTH:
            raise Invalid(
                f"{key}.auth: sparkmagic auth {entry.get('auth')!r} has no equivalent here "
                "(None, Basic_Access and Kerberos do)",
                f"{key}.auth",
            )
        identity = (entry["url"].rstrip("/"), AUTH[auth], username)
        seen.setdefault(
            identity,
            {
                "url": identity[0],
                "auth": identity[1],
                "username": username,
                "password": entry.get("password") or None,
            },
        )
    return list(seen.values())


def import_sparkmagic(config: dict[str, Any], fabrics: FabricService, user: str, team: str) -> ImportReport:
    """Create a Livy fabric per endpoint in the config (skipping names that exist); store the
    importing user's passwords as their credentials."""
    if not isinstance(config, dict):
        raise Invalid("A sparkmagic config.json holds a JSON object.")
    report = ImportReport()
    session = config.get("session_configs") or {}
    conf = {str(k): str(v) for k, v in (session.get("conf") or {}).items()}
    for key in credential_conf(conf):
        del conf[key]
        report.notes.append(f"session_configs.conf.{key}: holds a credential; fabrics hold none")
    size = {k: session[k] for k in RESOURCE_FIELDS if k in session}
    headers, carried = _headers(config, report)
    for endpoint in _endpoints(config):
        name = fabric_name(endpoint["url"])
        if carried is not None and endpoint["auth"] == "none":
            endpoint = {**endpoint, "auth": carried["auth"], "password": carried["secret"]}
            endpoint["username"] = carried.get("username")
        settings = {"url": endpoint["url"], "auth": endpoint["auth"], "headers": headers}
        if endpoint["url"].startswith("http://") and not LOOPBACK_HTTP.match(endpoint["url"]):
            settings["allow_http"] = True
            report.notes.append(
                f"{endpoint['url']}: plain http allowed (allow_http) as sparkmagic used it; prefer https"
            )
        if endpoint["username"] and endpoint["auth"] == "basic":
            settings["username"] = endpoint["username"]
        spec = {
            "name": name,
            "kind": "livy",
            "settings": settings,
            "conf": conf,
            "job_sizes": {"sparkmagic": size} if size else {},
        }
        try:
            fabric = fabrics.create(user, team, spec)
        except Conflict:
            report.skipped.append(f"{team}/{name} (exists)")
            continue
        report.created.append(fabric.ref)
        if fabric.secret_needed and endpoint["password"]:
            fabrics.set_secret(user, fabric.id, endpoint["password"])
            report.credentials.append(fabric.ref)
    return report
