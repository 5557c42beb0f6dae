"""The in-process service stack: registry, vault, local gateway, engines, sessions."""

from __future__ import annotations

from pathlib import Path

from prophecy_jupyter.paths import data_dir
from prophecy_jupyter.services.engines import EngineFactory
from prophecy_jupyter.services.fabrics import FabricRegistry
from prophecy_jupyter.services.local_gateway import LocalGateway
from prophecy_jupyter.services.sessions import ServiceSettings, SessionService


def build_session_service(
    directory: Path | None = None, settings: ServiceSettings | None = None
) -> SessionService:
    """A session service for this process (no Jupyter server needed)."""
    directory = directory or data_dir()
    registry = FabricRegistry(directory)
    engines = EngineFactory(registry, LocalGateway(directory))
    return SessionService(registry, engines, settings)
