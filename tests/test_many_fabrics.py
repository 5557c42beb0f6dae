"""One notebook, two fabrics, in a real Jupyter server: cells run on either (``-f``, ``%%fabric``),
each fabric keeps its own session through a kernel restart, an interrupt cancels the statement of
the fabric it ran on, and local tables are sent to both and between them (``%%send``)."""

from __future__ import annotations

import inspect
import time

import pytest

from tests.servers.gateway import start_gateway
from tests.servers.kernels import execute
from tests.test_sending import SPARK_TYPES, every_type
from tests.test_server_sessions import (
    add_gateway_fabric,
    attached_kernel,
    live_sessions,
    restarted,
    start,  # noqa: F401 - the fixture
)

pytestmark = [pytest.mark.spark, pytest.mark.slow]


@pytest.fixture(scope="module")
def second_gateway():
    """A second gateway, standing in for a Livy cluster: it takes no uploads, as Livy does not."""
    gateway = start_gateway("--no-uploads", token="second-gateway-token")
    yield gateway
    gateway.stop()


def last_statement(livy, gateway, session_id) -> dict:
    statements = livy.get(
        f"{gateway.url}/sessions/{session_id}/statements", headers=gateway.headers(), timeout=10
    ).json()
    return statements["statements"][-1]


def test_cells_run_on_two_fabrics_each_keeping_its_session(start, gateway, second_gateway, livy):  # noqa: F811
    server = start()
    add_gateway_fabric(server, gateway)
    add_gateway_fabric(server, second_gateway, "cluster")
    kernel, client = attached_kernel(server, "both.ipynb", "gw")
    try:
        assert execute(client, "%%spark\nwhere = 'gw'").ok
        assert execute(client, "%%spark -f cluster\nwhere = 'cluster'").ok
        assert execute(client, "%%spark\nprint(where)").stdout.strip() == "gw"
        assert execute(client, "%%fabric cluster\nprint(where)").stdout.strip() == "cluster"
        table = execute(client, "%%sql -f cluster -o counted -q\nSELECT 3 AS three")
        assert table.ok and execute(client, "print(int(counted.three[0]))").stdout.strip() == "3"
        status = execute(client, "%fabric status").stdout
        assert "Fabric: default/gw (default)" in status and "Fabric: default/cluster" in status
        assert status.count("Session: ") == 2, status
        sessions = {s["fabric"]: s for s in live_sessions(server, "both.ipynb")}
        assert set(sessions) == {"default/gw", "default/cluster"}

        client.execute("%%spark -f cluster\nimport time\ntime.sleep(60)")
        time.sleep(2)
        server.call("POST", f"/kernels/{kernel}/interrupt", api="/api")
        reply = client.get_shell_msg(timeout=30)
        assert reply["content"]["ename"] == "KeyboardInterrupt"
        cancelled = last_statement(livy, second_gateway, sessions["default/cluster"]["remote_id"])
        assert cancelled["state"] == "cancelled" and "sleep(60)" in cancelled["code"]
        untouched = last_statement(livy, gateway, sessions["default/gw"]["remote_id"])
        assert untouched["state"] == "available" and "print(where)" in untouched["code"]
    finally:
        client.stop_channels()
    client = restarted(server, kernel)
    try:
        assert execute(client, "%%spark\nprint(where)").stdout.strip() == "gw"
        assert execute(client, "%%spark -f cluster\nprint(where)").stdout.strip() == "cluster"
        after = {s["fabric"]: s["remote_id"] for s in live_sessions(server, "both.ipynb")}
        assert after == {fabric: s["remote_id"] for fabric, s in sessions.items()}, "both outlived the kernel"
    finally:
        client.stop_channels()


FRAME_CODE = (
    "import datetime, decimal\nimport numpy as np\nimport pandas as pd\nimport pyarrow as pa\n"
    + inspect.getsource(every_type)
    + "frame = every_type(50)\n"
)


def spark_types(client, fabric: str, name: str) -> dict:
    code = (
        f"%%spark -f {fabric}\nprint(dict((f.name, f.dataType.simpleString()) for f in {name}.schema.fields))"
    )
    cell = execute(client, code)
    assert cell.ok, cell.failure
    return eval(cell.stdout)


def test_local_tables_are_sent_to_both_fabrics_and_between_them(start, gateway, second_gateway):  # noqa: F811
    server = start()
    add_gateway_fabric(server, gateway)
    add_gateway_fabric(server, second_gateway, "cluster")
    kernel, client = attached_kernel(server, "send.ipynb", "gw")
    try:
        assert execute(client, FRAME_CODE).ok
        uploaded = execute(client, "%%send -i frame -n sent")
        assert uploaded.ok, uploaded.failure
        assert "Sent 50 rows to fabric 'default/gw' as 'sent' (b8 tinyint, i64 bigint," in uploaded.stdout
        as_text = execute(client, "%%send -i frame -f cluster -n sent --view")
        assert as_text.ok and "as 'sent' and a temporary view" in as_text.stdout, as_text.failure
        assert spark_types(client, "gw", "sent") == SPARK_TYPES
        assert spark_types(client, "cluster", "sent") == SPARK_TYPES
        back = execute(client, "%%sql -f cluster -o back -q -n -1\nSELECT * FROM sent")
        assert back.ok, back.failure
        same = execute(
            client,
            "print([c for c in frame.columns if c not in ('ts', 'items', 'record') "
            "and back[c].tolist() != frame[c].tolist()], "
            "back.ts.dt.tz_convert('UTC').tolist() == frame.ts.dt.tz_convert('UTC').tolist())",
        )
        assert same.stdout.strip() == "[] True", same.stdout

        sparkmagic = execute(client, "%%send_to_spark -i frame -t df -n sm\n")
        assert sparkmagic.ok and "Sent 50 rows" in sparkmagic.stdout, sparkmagic.failure
        assert execute(client, "%%spark\nprint(sm.count())").stdout.strip() == "50"
        execute(client, "greeting = \"it's 'quoted'\"")
        assert execute(client, "%%send_to_spark -i greeting -t str -n hello\n").ok
        assert execute(client, "%%spark\nprint(hello)").stdout.strip() == "it's 'quoted'"

        moved = execute(client, "%%sql -o moved -q\nSELECT id, id * 2 AS twice FROM range(1000)")
        assert moved.ok
        assert execute(client, "%%send -i moved -f cluster").ok
        counted = execute(client, "%%spark -f cluster\nprint(moved.selectExpr('sum(twice)').first()[0])")
        assert counted.stdout.strip() == str(sum(2 * i for i in range(1000)))

        magics = "get_ipython().magics_manager.registry['SendMagics']"
        assert execute(
            client, f"{magics}.part_bytes = 1 << 12\nmany = frame.sample(1_000_000, replace=True)"
        ).ok
        client.execute("%%send -i many -f cluster")
        time.sleep(3)
        server.call("POST", f"/kernels/{kernel}/interrupt", api="/api")
        assert client.get_shell_msg(timeout=30)["content"]["ename"] == "KeyboardInterrupt"
        held = execute(client, "%%spark -f cluster\nprint(len(__prophecy_parts), len(__prophecy_pieces))")
        assert held.stdout.strip() == "0 0", "the parts already sent were dropped"
        assert execute(client, "%%spark -f cluster\nprint('many' in dir())").stdout.strip() == "False"

        # A Ctrl-C that lands once the server has taken the first part, before its answer is read.
        cut_short = (
            f"backend = {magics}.fabrics.backend\n"
            "def send_cut_short(*args, __send=backend.send, **kwargs):\n"
            "    __send(*args, **kwargs)\n"
            "    raise KeyboardInterrupt\n"
            "backend.send = send_cut_short"
        )
        assert execute(client, cut_short).ok
        interrupted = execute(client, "%%send -i many -f cluster -n cut")
        assert not interrupted.ok and "KeyboardInterrupt" in interrupted.failure, interrupted.failure
        assert execute(client, "del backend.send").ok
        held = execute(client, "%%spark -f cluster\nprint(len(__prophecy_parts), len(__prophecy_pieces))")
        assert held.stdout.strip() == "0 0", "the first part, taken before the Ctrl-C, was dropped"

        assert execute(client, "things = [1, 2]").ok
        refused = execute(client, "%%send -i things")
        assert not refused.ok
        assert "things is a builtins.list: only a pandas DataFrame or a pyarrow Table can be sent" in (
            refused.failure
        )
        missing = execute(client, "%%send -i nothing_here")
        assert not missing.ok and "No local variable 'nothing_here' to send." in missing.failure
        bad_name = execute(client, "%%send -i frame -n 'not a name'")
        assert not bad_name.ok and "is not a Python variable name" in bad_name.failure
    finally:
        client.stop_channels()
