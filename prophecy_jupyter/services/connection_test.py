"""Connection tests that say exactly which step failed: DNS, TCP, TLS, credentials, the resource."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests

from prophecy_jupyter.engines.livy import LivyEngine
from prophecy_jupyter.errors import AuthenticationError, EngineError, VaultError
from prophecy_jupyter.services.engines import livy_connection, workspace_fields
from prophecy_jupyter.services.fabrics import Fabric, FabricService

TIMEOUT = 10.0
DNS_TIMEOUT = 10.0
# getaddrinfo has no timeout of its own: lookups run here and are waited for at most DNS_TIMEOUT.
_RESOLVER = ThreadPoolExecutor(max_workers=4, thread_name_prefix="prophecy-dns")


@dataclass
class ConnectionReport:
    ok: bool
    stage: str
    """The step that failed, or ``connected``: dns, tcp, tls, http, auth, resource, credentials."""
    message: str
    steps: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "stage": self.stage, "message": self.message, "steps": self.steps}


class _Failed(Exception):
    def __init__(self, stage: str, message: str):
        super().__init__(message)
        self.stage = stage


def _network(url: str, ca_bundle: str | None, steps: list[str]) -> None:
    """Resolve, connect and (for https) complete a verified TLS handshake."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    lookup = _RESOLVER.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    try:
        addresses = lookup.result(timeout=DNS_TIMEOUT)
    except FutureTimeout:
        raise _Failed(
            "dns", f"The name {host} did not resolve within {DNS_TIMEOUT:.0f} s. Is the DNS server reachable?"
        ) from None
    except socket.gaierror as exc:
        raise _Failed(
            "dns", f"The name {host} does not resolve ({exc.strerror}). Check the host name."
        ) from None
    steps.append(f"dns: {host} resolves to {addresses[0][4][0]}")
    try:
        connection = socket.create_connection((host, port), timeout=TIMEOUT)
    except OSError as exc:
        raise _Failed(
            "tcp",
            f"Nothing answers on {host}:{port} ({exc.strerror or exc}). Is the server up, "
            "and is the port right?",
        ) from None
    steps.append(f"tcp: connected to {host}:{port}")
    with connection:
        if parts.scheme != "https":
            return
        context = ssl.create_default_context(cafile=ca_bundle)
        try:
            with context.wrap_socket(connection, server_hostname=host):
                pass
        except ssl.SSLCertVerificationError as exc:
            raise _Failed(
                "tls",
                f"The TLS certificate of {host} is not trusted ({exc.verify_message}). "
                "Give the fabric a CA bundle, or fix the certificate.",
            ) from None
        except (ssl.SSLError, OSError) as exc:
            raise _Failed("tls", f"The TLS handshake with {host} failed ({exc}).") from None
    steps.append("tls: certificate verified")


def _livy(fabric: Fabric, secret: str | None, steps: list[str]) -> str:
    settings = fabric.typed_settings
    _network(settings.url, settings.ca_bundle, steps)
    try:
        engine = LivyEngine(livy_connection(fabric, retries=1), secret=secret, fabric_name=fabric.ref)
    except EngineError as exc:
        raise _Failed("credentials", str(exc)) from None
    try:
        version = engine.server_version()
        engine.list_sessions(size=1)
    except AuthenticationError as exc:
        raise _Failed("auth", str(exc)) from None
    except EngineError as exc:
        raise _Failed("http", str(exc)) from None
    finally:
        engine.close()
    shown = ".".join(map(str, version))
    steps.append(f"livy: version {shown}, sessions readable")
    return f"Connected to Livy {shown} at {settings.url}."


def _databricks(fabric: Fabric, secret: str | None, steps: list[str]) -> str:
    """The workspace through databricks-sdk with the fabric's auth (PAT, OAuth M2M or a profile)."""
    from databricks.sdk.errors import DatabricksError, PermissionDenied, Unauthenticated

    from prophecy_jupyter.engines.databricks_client import Workspace, WorkspaceConnection

    settings = fabric.typed_settings
    _network(settings.host, None, steps)
    connection = WorkspaceConnection(
        **workspace_fields(settings), retry_timeout=TIMEOUT, http_timeout=TIMEOUT
    )
    if fabric.kind == "databricks":
        what, read = f"cluster {settings.cluster_id}", lambda w: w.client.clusters.get(settings.cluster_id)
    else:
        what, read = (
            f"warehouse {settings.warehouse_id}",
            lambda w: w.client.warehouses.get(settings.warehouse_id),
        )
    try:
        found = read(Workspace(connection, secret, fabric.ref))
    except (PermissionDenied, Unauthenticated) as exc:
        raise _Failed(
            "auth", f"The workspace refused your {fabric.secret_needed or 'credentials'} ({exc})."
        ) from None
    except DatabricksError as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            raise _Failed("resource", f"The workspace has no {what} that you can see ({exc}).") from None
        raise _Failed("http", f"The workspace answered: {exc}") from None
    except EngineError as exc:  # a client that cannot be set up (e.g. a missing profile)
        raise _Failed("credentials", str(exc)) from None
    except (TimeoutError, ValueError) as exc:
        raise _Failed("auth", f"Could not authenticate to the workspace: {exc}") from None
    steps.append(f"auth: {settings.auth} accepted")
    state = found.state.value if found.state else "UNKNOWN"
    steps.append(f"{what}: {state}")
    return f"Connected to {settings.host}; {what} is {state}."


def _snowflake(fabric: Fabric, secret: str | None, steps: list[str]) -> str:
    account = fabric.typed_settings.account
    _network(f"https://{account}.snowflakecomputing.com", None, steps)
    steps.append("auth: checked when the first session starts")
    return f"{account}.snowflakecomputing.com is reachable."


_TESTS: dict[str, Callable[[Fabric, str | None, list[str]], str]] = {
    "livy": _livy,
    "databricks": _databricks,
    "databricks-sql": _databricks,
    "snowflake": _snowflake,
}


def check_fabric(fabrics: FabricService, user: str, ref: str) -> ConnectionReport:
    """Test the user's fabric with their own credential (one the vault cannot open is reported)."""
    fabric = fabrics.get(user, ref)
    try:
        secret = fabrics.secret(user, fabric)
    except VaultError as exc:
        return ConnectionReport(False, "credentials", str(exc), [])
    return test_connection(fabric, secret)


def test_connection(fabric: Fabric, secret: str | None) -> ConnectionReport:
    """Check a fabric step by step with the user's own credential."""
    steps: list[str] = []
    if fabric.kind == "local":
        return ConnectionReport(True, "connected", "The local fabric runs on this machine.", steps)
    if fabric.secret_needed and not secret:
        return ConnectionReport(
            False, "credentials", f"Set your {fabric.secret_needed} for '{fabric.ref}' first.", steps
        )
    try:
        message = _TESTS[fabric.kind](fabric, secret, steps)
    except _Failed as failure:
        return ConnectionReport(False, failure.stage, str(failure), steps)
    except requests.RequestException as exc:
        return ConnectionReport(False, "http", f"The request failed: {type(exc).__name__}.", steps)
    return ConnectionReport(True, "connected", message, steps)
