"""Connection tests that say exactly which step failed: DNS, TCP, TLS, credentials, the resource
(each kind's check, ``kinds``), with the user's own credential."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import requests

from prophecy_jupyter.errors import VaultError
from prophecy_jupyter.kinds.base import CheckFailed
from prophecy_jupyter.services.fabrics import Fabric, FabricService


@dataclass
class ConnectionReport:
    ok: bool
    stage: str
    """The step that failed, or ``connected``: dns, tcp, tls, http, auth, resource, credentials."""
    message: str
    steps: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "stage": self.stage, "message": self.message, "steps": self.steps}


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
    if fabric.secret_needed and not secret:
        return ConnectionReport(
            False, "credentials", f"Set your {fabric.secret_needed} for '{fabric.ref}' first.", steps
        )
    try:
        message = fabric.kind_of.check(fabric.typed_settings, secret, steps, fabric.ref)
    except CheckFailed as failure:
        return ConnectionReport(False, failure.stage, str(failure), steps)
    except requests.RequestException as exc:
        return ConnectionReport(False, "http", f"The request failed: {type(exc).__name__}.", steps)
    return ConnectionReport(True, "connected", message, steps)
