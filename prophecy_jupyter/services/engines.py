"""The engine that speaks to a fabric: built by the fabric's kind from its settings and the user's
own secret; the local fabric's gateway is started on first use."""

from __future__ import annotations

from prophecy_jupyter.engines.base import Engine
from prophecy_jupyter.kinds.base import EngineContext
from prophecy_jupyter.services.fabrics import Fabric
from prophecy_jupyter.services.local_gateway import LocalGateway


class EngineFactory:
    """Builds engines; the local fabric's gateway is started on first use."""

    def __init__(self, local_gateway: LocalGateway):
        self.local_gateway = local_gateway

    def engine(self, fabric: Fabric, secret: str | None, proxy_user: str | None = None) -> Engine:
        """The fabric's engine with the user's secret; where the fabric can, it runs the user's
        work as ``proxy_user``."""
        context = EngineContext(fabric.ref, secret, proxy_user, self.local_gateway.endpoint)
        return fabric.kind_of.build(fabric.typed_settings, context)
