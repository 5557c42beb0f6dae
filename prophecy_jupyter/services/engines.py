"""The engine that speaks to a fabric, built from its settings and the user's secret."""

from __future__ import annotations

from prophecy_jupyter.engines.base import Engine
from prophecy_jupyter.engines.livy import LivyEngine, LivySettings
from prophecy_jupyter.services.fabrics import Fabric, FabricRegistry
from prophecy_jupyter.services.local_gateway import LocalGateway


class EngineFactory:
    """Builds engines; the local fabric's gateway is started on first use."""

    def __init__(self, registry: FabricRegistry, local_gateway: LocalGateway):
        self.registry = registry
        self.local_gateway = local_gateway

    def engine(self, fabric: Fabric) -> Engine:
        if fabric.kind == "local":
            url, token = self.local_gateway.endpoint()
            return LivyEngine(LivySettings(url=url, auth="bearer"), secret=token, fabric_name=fabric.name)
        settings = LivySettings(
            url=fabric.url or "",
            auth=fabric.auth,
            username=fabric.username,
            headers=fabric.headers,
            ca_bundle=fabric.ca_bundle,
        )
        secret = self.registry.secret(fabric.name) if fabric.needs_secret else None
        return LivyEngine(settings, secret=secret, fabric_name=fabric.name)
