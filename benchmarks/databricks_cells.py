"""Benchmark 5: the latency our Databricks engine adds to a cell, against databricks-sdk's own
``command_execution.execute_and_wait`` on the same stand-in workspace (Command Execution API 1.2
over our gateway's interpreters).

Server time is the command's run time in its interpreter; added latency is the client's wall time
from submit to result minus that. A bare client that checks the status back to back gives the
floor (the stand-in's and the gateway's own cost); ours is measured over that floor.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from benchmarks.latency import measure_latency

NOTEBOOK = "bench-databricks"


class OurDatabricksClient:
    """``SessionService.run`` on a databricks fabric of the stand-in workspace."""

    def __init__(self, data_dir: Path, workspace: Any, cluster: str):
        from prophecy_jupyter.environment import local_username
        from prophecy_jupyter.services.runtime import build_services

        self.description = "SessionService.run on a databricks fabric (our status loop)"
        self.workspace = workspace
        self.user = local_username()
        self.services = build_services(data_dir, bootstrap_user=self.user)
        spec = {
            "name": "dbx",
            "kind": "databricks",
            "settings": {"host": workspace.url, "cluster_id": cluster},
        }
        fabric = self.services.fabrics.create(self.user, "default", spec)
        self.services.credentials.set(self.user, fabric, workspace.pat)

    def measure(self, code: str) -> dict[str, Any]:
        from prophecy_jupyter.results.model import RunState

        started = time.perf_counter()
        run = self.services.sessions.run(self.user, NOTEBOOK, "dbx", code)
        wall = time.perf_counter() - started
        if run.state != RunState.FINISHED:
            raise RuntimeError(f"our run ended {run.state}: {run.result}")
        server = self.workspace.command_seconds(run.session.remote.id, run.statement_id)
        return {"wall_s": wall, "server_s": server, "polls": run.polls}

    def close(self) -> None:
        self.services.close()


class SdkClient:
    """databricks-sdk's ``execute_and_wait``: what a script written on the SDK does."""

    def __init__(self, workspace: Any, cluster: str):
        from databricks.sdk import WorkspaceClient
        from databricks.sdk.core import Config
        from databricks.sdk.service.compute import Language

        self.description = "databricks-sdk command_execution.execute_and_wait"
        self.workspace, self.cluster, self.language = workspace, cluster, Language.PYTHON
        self.client = WorkspaceClient(config=Config(host=workspace.url, token=workspace.pat))
        self.context = self.client.command_execution.create_and_wait(
            cluster_id=cluster, language=Language.PYTHON
        ).id

    def measure(self, code: str) -> dict[str, Any]:
        started = time.perf_counter()
        answer = self.client.command_execution.execute_and_wait(
            cluster_id=self.cluster, context_id=self.context, language=self.language, command=code
        )
        wall = time.perf_counter() - started
        server = self.workspace.command_seconds(self.context, answer.id)
        return {"wall_s": wall, "server_s": server}

    def close(self) -> None:
        self.client.command_execution.destroy(cluster_id=self.cluster, context_id=self.context)


class BareClient:
    """The floor: plain HTTP, submit then status checks back to back (no client logic at all)."""

    def __init__(self, workspace: Any, cluster: str):
        import requests

        self.description = "plain requests: execute, then commands/status with no pause (the floor)"
        self.workspace, self.cluster = workspace, cluster
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {workspace.pat}"
        body = {"clusterId": cluster, "language": "python"}
        self.context = self.http.post(
            f"{workspace.url}/api/1.2/contexts/create", json=body, timeout=60
        ).json()["id"]
        query = {"clusterId": cluster, "contextId": self.context}
        while (
            self.http.get(f"{workspace.url}/api/1.2/contexts/status", params=query, timeout=60).json()[
                "status"
            ]
            != "Running"
        ):
            time.sleep(0.05)

    def measure(self, code: str) -> dict[str, Any]:
        url = self.workspace.url
        body = {"clusterId": self.cluster, "contextId": self.context, "language": "python", "command": code}
        started = time.perf_counter()
        command = self.http.post(f"{url}/api/1.2/commands/execute", json=body, timeout=60).json()["id"]
        query = {"clusterId": self.cluster, "contextId": self.context, "commandId": command}
        polls = 0
        while True:
            polls += 1
            status = self.http.get(f"{url}/api/1.2/commands/status", params=query, timeout=60).json()[
                "status"
            ]
            if status in ("Finished", "Cancelled", "Error"):
                break
        wall = time.perf_counter() - started
        return {
            "wall_s": wall,
            "server_s": self.workspace.command_seconds(self.context, command),
            "polls": polls,
        }

    def close(self) -> None:
        body = {"clusterId": self.cluster, "contextId": self.context}
        self.http.post(f"{self.workspace.url}/api/1.2/contexts/destroy", json=body, timeout=60)
        self.http.close()


def measure_databricks(gateway_url: str, token: str, scratch: Path, repetitions: int) -> dict[str, Any]:
    """Ours and the SDK's waiter, taking turns, on one stand-in cluster."""
    from tests.servers.databricks import StandInWorkspace

    for name in [n for n in os.environ if n.startswith("DATABRICKS_")]:
        del os.environ[name]
    os.environ["DATABRICKS_CONFIG_FILE"] = str(scratch / "no-databrickscfg")
    workspace = StandInWorkspace(gateway_url, token).start()
    clients: dict[str, Any] = {}
    try:
        cluster = workspace.add_cluster()
        clients["ours"] = OurDatabricksClient(scratch / "data-databricks", workspace, cluster)
        clients["sdk"] = SdkClient(workspace, cluster)
        clients["floor"] = BareClient(workspace, cluster)
        results = measure_latency(clients, repetitions)
    finally:
        for client in clients.values():
            client.close()
        workspace.stop()
    by_client = {name: client["by_sleep"] for name, client in results["clients"].items()}
    ours, sdk, floor = by_client["ours"], by_client["sdk"], by_client["floor"]
    results["wall_ratio_sdk_over_ours"] = {
        sleep: sdk[sleep]["wall_s"]["median"] / ours[sleep]["wall_s"]["median"] for sleep in ours
    }
    results["ours_over_floor_ms"] = {
        sleep: ours[sleep]["added_ms"]["median"] - floor[sleep]["added_ms"]["median"] for sleep in ours
    }
    return results
