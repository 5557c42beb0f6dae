"""The engine that speaks to a fabric, built from its settings and the user's own secret."""

from __future__ import annotations

from typing import Any

from prophecy_jupyter.engines.base import Engine
from prophecy_jupyter.engines.livy import LivyEngine, LivySettings
from prophecy_jupyter.errors import EngineError
from prophecy_jupyter.services.fabrics import Fabric
from prophecy_jupyter.services.local_gateway import LocalGateway


def livy_connection(fabric: Fabric, **overrides: Any) -> LivySettings:
    """The Livy client settings of a livy fabric (``overrides``: e.g. fewer retries)."""
    settings = fabric.typed_settings
    return LivySettings(
        url=settings.url,
        auth=settings.auth,
        username=settings.username,
        headers=settings.headers,
        ca_bundle=settings.ca_bundle,
        **overrides,
    )


def workspace_fields(settings: Any) -> dict[str, Any]:
    """Where and how a databricks or databricks-sql fabric reaches its workspace."""
    return {
        "host": settings.host,
        "auth": settings.auth,
        "client_id": settings.client_id,
        "profile": settings.profile,
    }


class EngineFactory:
    """Builds engines; the local fabric's gateway is started on first use."""

    def __init__(self, local_gateway: LocalGateway):
        self.local_gateway = local_gateway

    def engine(self, fabric: Fabric, secret: str | None, proxy_user: str | None = None) -> Engine:
        """The fabric's engine with the user's secret; on Livy, sessions run as ``proxy_user``."""
        if fabric.kind == "local":
            url, token = self.local_gateway.endpoint()
            return LivyEngine(LivySettings(url=url, auth="bearer"), secret=token, fabric_name=fabric.ref)
        if fabric.kind == "livy":
            connection = livy_connection(fabric, proxy_user=proxy_user)
            return LivyEngine(connection, secret=secret, fabric_name=fabric.ref)
        if fabric.kind == "databricks":
            # databricks-sdk takes a while to import: only processes that use it pay for it
            from prophecy_jupyter.engines.databricks import DatabricksConnection, DatabricksEngine

            settings = fabric.typed_settings
            connection = DatabricksConnection(**workspace_fields(settings), cluster_id=settings.cluster_id)
            return DatabricksEngine(connection, secret, fabric_name=fabric.ref)
        if fabric.kind == "databricks-sql":
            from prophecy_jupyter.engines.databricks_sql import DatabricksSqlEngine, SqlWarehouseConnection

            settings = fabric.typed_settings
            connection = SqlWarehouseConnection(
                **workspace_fields(settings),
                warehouse_id=settings.warehouse_id,
                catalog=settings.catalog,
                schema=settings.schema_name,
            )
            return DatabricksSqlEngine(connection, secret, fabric_name=fabric.ref)
        raise EngineError(
            f"Fabric '{fabric.ref}' is a {fabric.kind} fabric; running cells on {fabric.kind} is not "
            "available in this version yet. Its settings and your credentials are kept."
        )
