"""Fabrics and secrets of the first release (``fabrics.json`` and ``vault.json`` in the data dir),
moved into the store on first open so an upgrade loses nothing.

The files are renamed ``*.imported`` afterwards; a fabric that cannot be moved is reported and the
files stay, so nothing is lost and the move is tried again next time.
"""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from prophecy_jupyter.errors import Conflict, ProphecyError
from prophecy_jupyter.services.credentials import CredentialService
from prophecy_jupyter.services.fabrics import FabricService
from prophecy_jupyter.services.teams import DEFAULT_TEAM

log = logging.getLogger(__name__)
FABRICS_FILE, VAULT_FILE = "fabrics.json", "vault.json"
_SETTINGS = ("url", "auth", "username", "headers", "ca_bundle")
_NONCE = 12


def import_legacy(
    directory: Path, user: str, fabrics: FabricService, credentials: CredentialService
) -> list[str]:
    """Move the first release's fabrics into team ``default`` (their secrets become ``user``'s).

    Returns what was done, one line per fabric.
    """
    registry = directory / FABRICS_FILE
    if not registry.exists():
        return []
    try:
        entries = json.loads(registry.read_text())["fabrics"]
    except (ValueError, KeyError, TypeError) as exc:
        return [f"{registry} could not be read ({exc}); its fabrics were not moved."]
    done, failed = [], False
    try:
        secrets = _legacy_secrets(directory / VAULT_FILE, credentials)
    except (ValueError, AttributeError) as exc:
        secrets, failed = {}, True
        done.append(f"{VAULT_FILE} could not be read ({type(exc).__name__}); set your secrets again.")
    for name, old in sorted(entries.items()):
        spec = {
            "name": name,
            "kind": old.get("kind"),
            "settings": {k: old[k] for k in _SETTINGS if old.get(k) is not None},
            "conf": old.get("conf") or {},
            "job_sizes": old.get("job_sizes") or {},
            "environment": old.get("environment") or "dev",
        }
        try:
            fabric = fabrics.create(user, DEFAULT_TEAM, spec)
        except Conflict:
            done.append(f"{name}: team {DEFAULT_TEAM} already has a fabric of that name; kept that one.")
            continue
        except ProphecyError as exc:
            done.append(f"{name}: not moved ({exc}).")
            failed = True
            continue
        secret = secrets.get(f"fabric:{name}")
        if secret is not None:
            credentials.set(user, fabric, secret)
        done.append(f"{name}: moved to {fabric.ref}" + (" with your secret." if secret is not None else "."))
    if not failed:
        for path in (registry, directory / VAULT_FILE):
            if path.exists():
                path.rename(path.with_name(path.name + ".imported"))
    for line in done:
        log.info("first-release fabric %s", line)
    return done


def _legacy_secrets(path: Path, credentials: CredentialService) -> dict[str, str]:
    """The first release's vault, opened with the current key (entry name as associated data)."""
    if not path.exists():
        return {}
    aead = AESGCM(credentials.keys.load().material)
    opened = {}
    for name, sealed_text in json.loads(path.read_text()).get("entries", {}).items():
        sealed = base64.b64decode(sealed_text)
        try:
            opened[name] = aead.decrypt(sealed[:_NONCE], sealed[_NONCE:], name.encode()).decode()
        except InvalidTag:
            log.warning("the first-release secret %s does not open with the current key; set it again", name)
    return opened
