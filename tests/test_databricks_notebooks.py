"""Notebooks on Databricks fabrics in a real Jupyter server: the bridge kernel and the magics run
cells on a stand-in cluster (started from the notebook), %%sql goes to a SQL warehouse, interrupt
cancels the command, and the token stays out of notebooks, logs and the data dir."""

from __future__ import annotations

import os
import time

import pytest

from tests.servers.jupyter import start_jupyter, write_notebook
from tests.servers.kernels import execute

pytestmark = [pytest.mark.spark, pytest.mark.slow]


@pytest.fixture
def workspace(databricks_workspace):
    databricks_workspace.start_delay = 3.0
    return databricks_workspace


@pytest.fixture
def server(tmp_path, data_dir, workspace):
    started = start_jupyter(tmp_path, data_dir, os.environ["PROPHECY_JUPYTER_KEY"])
    for name, kind, settings in (
        ("dbx", "databricks", {"cluster_id": workspace.add_cluster("nightly", state="TERMINATED")}),
        ("bi", "databricks-sql", {"warehouse_id": workspace.add_warehouse()}),
    ):
        spec = {"name": name, "kind": kind, "settings": {"host": workspace.url, **settings}}
        fabric = started.call("POST", "/teams/default/fabrics", spec)
        started.call("PUT", f"/fabrics/{fabric['id']}/credential", {"secret": workspace.pat})
    yield started
    started.stop()


def test_the_bridge_kernel_and_magics_on_databricks_fabrics(server, workspace, data_dir):
    write_notebook(server.root / "dbx.ipynb", fabric="dbx")
    kernel = server.start_kernel("dbx.ipynb", kernel="prophecy")
    client = server.client(kernel)
    try:
        stopped = execute(client, "x = 20")
        assert not stopped.ok and "TERMINATED; start it with `%fabric start`" in stopped.failure
        started = execute(client, "%fabric start")
        assert started.ok and "Starting cluster nightly of fabric 'dbx'" in started.stdout
        assert any("PENDING (Starting Spark)" in t for t in started.data()), "progress is shown in place"
        assert "Cluster nightly is RUNNING." in started.stdout
        assert execute(client, "x = 20").ok
        assert execute(client, "x * 2").stdout.strip() == "40"
        failed = execute(client, "def broken():\n    return undefined_thing\nbroken()")
        assert not failed.ok and "NameError" in failed.failure and "broken()" in failed.failure
        table = execute(
            client, "%%sql -o df -p n:INT=3\nSELECT id, CAST(id AS DECIMAL(4,1)) AS d FROM range(:n)"
        )
        assert table.ok, table.failure
        typed = execute(client, "%%local\nprint(len(df), df.dtypes.astype(str).to_dict())")
        assert typed.stdout.strip() == "3 {'id': 'int64', 'd': 'decimal128(4, 1)[pyarrow]'}"

        started_at = time.monotonic()
        client.execute("import time\ntime.sleep(60)")
        time.sleep(2)
        server.call("POST", f"/kernels/{kernel}/interrupt", api="/api")
        assert client.get_shell_msg(timeout=30)["content"]["ename"] == "KeyboardInterrupt"
        assert time.monotonic() - started_at < 20
        assert any(r["path"] == "/api/1.2/commands/cancel" for r in workspace.requests)
        assert execute(client, "x").stdout.strip() == "20", "the context is usable after the interrupt"

        assert execute(client, "%fabric attach bi").ok
        warehouse = execute(client, "%%sql -o who -p name=ana\nSELECT :name AS name, 1 AS one")
        assert warehouse.ok and any("<table" in h for h in warehouse.data("text/html")), warehouse.failure
        assert execute(client, "%%local\nprint(who.dtypes.astype(str).to_dict())").stdout.strip() == (
            "{'name': 'string', 'one': 'int32'}"
        )
        python = execute(client, "1 + 1")
        assert not python.ok and "runs SQL only" in python.failure
        detached = execute(client, "%fabric detach")
        assert detached.ok
    finally:
        client.stop_channels()
        server.call("DELETE", f"/kernels/{kernel}", api="/api")

    write_notebook(server.root / "magics.ipynb", fabric="dbx")
    kernel = server.start_kernel("magics.ipynb")
    client = server.client(kernel)
    try:
        assert execute(client, "%load_ext prophecy_jupyter").ok
        cell = execute(client, "%%spark\nspark.range(7).count()")
        assert cell.ok and cell.stdout.strip() == "7", cell.failure
    finally:
        client.stop_channels()
        server.call("DELETE", f"/kernels/{kernel}", api="/api")
    server.stop()
    secret = workspace.pat.encode()
    for folder in (server.root, data_dir, server.log.parent):
        for path in folder.rglob("*"):
            assert not path.is_file() or secret not in path.read_bytes(), f"the token is in {path}"
