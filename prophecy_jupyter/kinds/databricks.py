"""``databricks`` (an all-purpose cluster through the Command Execution API 1.2) and
``databricks-sql`` (a SQL warehouse through the Statement Execution API), on databricks-sdk with a
PAT, OAuth M2M or a ``~/.databrickscfg`` profile. The SDK is imported only when one is used."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from prophecy_jupyter.engines.base import Engine, HasClusters, RunsSql
from prophecy_jupyter.errors import EngineError
from prophecy_jupyter.kinds import network
from prophecy_jupyter.kinds.base import LOOPBACK_HTTP, CheckFailed, EngineContext, FabricKind, KindSettings
from prophecy_jupyter.schedulers.databricks_jobs import DATABRICKS_JOBS

_HTTPS_HOST = re.compile(r"^https://[^\s/]+")


class WorkspaceSettings(KindSettings):
    """Where and how a fabric reaches its Databricks workspace."""

    host: str
    auth: Literal["pat", "oauth-m2m", "profile"] = "pat"
    client_id: str | None = None
    profile: str | None = None

    @field_validator("host")
    @classmethod
    def _host(cls, host: str) -> str:
        if not (_HTTPS_HOST.match(host) or LOOPBACK_HTTP.match(host)):
            raise ValueError("must be the workspace's https:// URL (plain http only on this machine)")
        return host.rstrip("/")

    @model_validator(mode="after")
    def _auth_fields(self):
        if self.auth == "oauth-m2m" and not self.client_id:
            raise ValueError("oauth-m2m needs a client_id")
        if self.auth == "profile" and not self.profile:
            raise ValueError("profile auth needs a profile name")
        return self

    def secret_needed(self) -> str | None:
        return {"pat": "token", "oauth-m2m": "client secret"}.get(self.auth)

    def endpoint(self) -> str:
        return self.host

    def shared_identity(self) -> bool:
        return self.auth == "profile"

    def workspace(self) -> dict[str, Any]:
        """The connection fields the engines and the SDK take."""
        return {"host": self.host, "auth": self.auth, "client_id": self.client_id, "profile": self.profile}


class DatabricksSettings(WorkspaceSettings):
    cluster_id: str
    job_code: Literal["workspace", "git"] = Field(
        default="workspace",
        description="Where jobs take pipeline code: imported into the workspace, or from the project's Git",
    )
    job_code_root: str | None = Field(
        default=None, description="Workspace folder jobs' pipeline code is imported under (/Shared/prophecy)"
    )

    @field_validator("job_code_root")
    @classmethod
    def _code_root(cls, root: str | None) -> str | None:
        if root is not None and (not re.fullmatch(r"/[\w./-]+", root) or {".", ".."} & set(root.split("/"))):
            raise ValueError("must be an absolute workspace folder, such as /Shared/prophecy")
        return root


class DatabricksSqlSettings(WorkspaceSettings):
    warehouse_id: str
    catalog: str | None = None
    schema_name: str | None = Field(default=None, alias="schema")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _cluster_engine(settings: DatabricksSettings, context: EngineContext) -> Engine:
    from prophecy_jupyter.engines.databricks import DatabricksConnection, DatabricksEngine

    connection = DatabricksConnection(**settings.workspace(), cluster_id=settings.cluster_id)
    return DatabricksEngine(connection, context.secret, fabric_name=context.ref)


def _warehouse_engine(settings: DatabricksSqlSettings, context: EngineContext) -> Engine:
    from prophecy_jupyter.engines.databricks_sql import DatabricksSqlEngine, SqlWarehouseConnection

    connection = SqlWarehouseConnection(
        **settings.workspace(),
        warehouse_id=settings.warehouse_id,
        catalog=settings.catalog,
        schema=settings.schema_name,
    )
    return DatabricksSqlEngine(connection, context.secret, fabric_name=context.ref)


def _checker(what: Callable[[Any], str], read: Callable[[Any, Any], Any]):
    """The workspace through databricks-sdk with the fabric's auth, then ``read`` its resource."""

    def check(settings: WorkspaceSettings, secret: str | None, steps: list[str], ref: str) -> str:
        from databricks.sdk.errors import DatabricksError, PermissionDenied, Unauthenticated

        from prophecy_jupyter.engines.databricks_client import Workspace, WorkspaceConnection

        network.reach(settings.host, None, steps)
        connection = WorkspaceConnection(
            **settings.workspace(), retry_timeout=network.TIMEOUT, http_timeout=network.TIMEOUT
        )
        name = what(settings)
        try:
            found = read(Workspace(connection, secret, ref).client, settings)
        except (PermissionDenied, Unauthenticated) as exc:
            raise CheckFailed(
                "auth", f"The workspace refused your {settings.secret_needed() or 'credentials'} ({exc})."
            ) from None
        except DatabricksError as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
                raise CheckFailed(
                    "resource", f"The workspace has no {name} that you can see ({exc})."
                ) from None
            raise CheckFailed("http", f"The workspace answered: {exc}") from None
        except EngineError as exc:  # a client that cannot be set up (e.g. a missing profile)
            raise CheckFailed("credentials", str(exc)) from None
        except (TimeoutError, ValueError) as exc:
            raise CheckFailed("auth", f"Could not authenticate to the workspace: {exc}") from None
        steps.append(f"auth: {settings.auth} accepted")
        state = found.state.value if found.state else "UNKNOWN"
        steps.append(f"{name}: {state}")
        return f"Connected to {settings.host}; {name} is {state}."

    return check


DATABRICKS = FabricKind(
    name="databricks",
    title="Databricks clusters",
    settings=DatabricksSettings,
    check=_checker(lambda s: f"cluster {s.cluster_id}", lambda client, s: client.clusters.get(s.cluster_id)),
    engine=_cluster_engine,
    capabilities=(HasClusters,),
    scheduler=DATABRICKS_JOBS,
)
DATABRICKS_SQL = FabricKind(
    name="databricks-sql",
    title="Databricks SQL warehouses",
    settings=DatabricksSqlSettings,
    check=_checker(
        lambda s: f"warehouse {s.warehouse_id}", lambda client, s: client.warehouses.get(s.warehouse_id)
    ),
    engine=_warehouse_engine,
    capabilities=(RunsSql,),
)
