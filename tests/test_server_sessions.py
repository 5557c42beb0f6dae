"""Sessions in a real Jupyter server: kernels reach them over REST, they survive kernel and server
restarts, idle ones are reaped, users are limited; the bridge kernel runs every cell remotely."""

from __future__ import annotations

import http.client
import json
import os
import re
import time
from pathlib import Path

import nbformat
import pyarrow as pa
import pytest

from prophecy_jupyter.client.link import API_PREFIX
from tests.servers.jupyter import start_jupyter, write_notebook
from tests.servers.kernels import Cell, execute
from tests.servers.snowflake import Accounts, snowflake_stand_in
from tests.waiting import wait_until

pytestmark = [pytest.mark.spark, pytest.mark.slow]


@pytest.fixture
def start(tmp_path, data_dir):
    """Start Jupyter servers over one data dir (as restarts of the same install); all stopped after."""
    started = []

    def launch(*options: str):
        server = start_jupyter(tmp_path, data_dir, os.environ["PROPHECY_JUPYTER_KEY"], *options)
        started.append(server)
        return server

    yield launch
    for server in started:
        server.stop()


def add_gateway_fabric(server, gateway, name: str = "gw") -> dict:
    fabric = server.call(
        "POST",
        "/teams/default/fabrics",
        {"name": name, "kind": "livy", "settings": {"url": gateway.url, "auth": "bearer"}},
    )
    server.call("PUT", f"/fabrics/{fabric['id']}/credential", {"secret": gateway.token})
    return fabric


def assert_interrupt_cancels(server, kernel: str, client, code: str) -> None:
    """Run ``code`` (a long sleep), interrupt the kernel through the server: the cell stops at once."""
    started = time.monotonic()
    client.execute(code)
    time.sleep(1.5)
    server.call("POST", f"/kernels/{kernel}/interrupt", api="/api")
    reply = client.get_shell_msg(timeout=30)
    assert reply["content"]["ename"] == "KeyboardInterrupt" and time.monotonic() - started < 20


def attached_kernel(server, notebook: str, fabric: str):
    """A kernel the server started for a new notebook, with the magics loaded and attached to
    ``fabric``: its id and a client (stop its channels when done)."""
    write_notebook(server.root / notebook)
    kernel = server.start_kernel(notebook)
    client = server.client(kernel)
    assert execute(client, "%load_ext prophecy_jupyter").ok
    assert execute(client, f"%fabric attach {fabric}").ok
    return kernel, client


@pytest.fixture
def gateway_kernel(start, gateway):
    """``gateway_kernel(notebook)``: a server with fabric ``gw`` on the test gateway, and a kernel it
    started for a new ``notebook``, attached to ``gw`` (its id and a client, stopped after)."""
    clients = []

    def launch(notebook: str):
        server = start()
        add_gateway_fabric(server, gateway)
        kernel, client = attached_kernel(server, notebook, "gw")
        clients.append(client)
        return server, kernel, client

    yield launch
    for client in clients:
        client.stop_channels()


def restarted(server, kernel: str):
    """The kernel restarted through the server, a new client to it and the magics loaded again."""
    server.call("POST", f"/kernels/{kernel}/restart", api="/api")
    client = server.client(kernel)
    assert execute(client, "%load_ext prophecy_jupyter").ok
    return client


def live_sessions(server, notebook: str | None = None) -> list[dict]:
    params = {"notebook": notebook} if notebook else None
    return [s for s in server.call("GET", "/sessions", params=params)["sessions"] if s["state"] != "ended"]


def test_rest_runs_and_tables(start, gateway):
    server = start()
    add_gateway_fabric(server, gateway)
    session = server.call("POST", "/sessions", {"notebook": "rest.ipynb", "fabric": "gw", "wait": True})
    assert session["state"] == "idle" and session["fabric"] == "default/gw"
    again = server.call("POST", "/sessions", {"notebook": "rest.ipynb", "fabric": "gw", "wait": True})
    assert again["id"] == session["id"] and again["remote_id"] == session["remote_id"]
    run = server.call("POST", f"/sessions/{session['id']}/runs", {"code": "spark.range(6).count()"})
    done = server.call("GET", f"/runs/{run['id']}", params={"wait": "20"})
    assert done["state"] == "finished" and done["result"] == {"kind": "text", "text": "6"}
    table = server.call(
        "POST",
        f"/sessions/{session['id']}/tables",
        {"source": "spark.range(5).selectExpr('id', 'id * 2 as twice')", "limit": 3},
    )
    finished = server.call("GET", f"/runs/{table['id']}", params={"wait": "30"})
    assert finished["state"] == "finished" and finished["result"]["table"] == {"truncated": True, "limit": 3}
    data = server.request("GET", f"/runs/{table['id']}/table")
    assert data.headers["Content-Type"] == "application/vnd.apache.arrow.stream"
    arrow = pa.ipc.open_stream(data.content).read_all()
    assert arrow.column("twice").to_pylist() == [0, 2, 4]
    slow = server.call("POST", f"/sessions/{session['id']}/runs", {"code": "import time\ntime.sleep(60)"})
    time.sleep(0.5)
    server.call("POST", f"/runs/{slow['id']}/cancel")
    assert server.call("GET", f"/runs/{slow['id']}", params={"wait": "20"})["state"] == "cancelled"
    logs = server.call("GET", f"/sessions/{session['id']}/logs", params={"size": "5"})
    assert any("ready" in line for line in logs["lines"])
    matches = server.call("POST", f"/sessions/{session['id']}/complete", {"code": "spark.rang", "cursor": 10})
    assert "spark.range(" in matches["matches"]


def test_a_submit_may_wait_for_its_run_and_a_client_that_hangs_up_on_it_cancels_the_run(start, gateway):
    server = start()
    add_gateway_fabric(server, gateway)
    session = server.call("POST", "/sessions", {"notebook": "held.ipynb", "fabric": "gw", "wait": True})
    runs = f"/sessions/{session['id']}/runs"
    short = server.request("POST", runs, {"code": "spark.range(4).count()"}, params={"wait": "20"})
    assert short.status_code == 200, "answered once the run was over: one request"
    assert short.json()["state"] == "finished" and short.json()["result"]["text"] == "4"
    longer = server.request("POST", runs, {"code": "import time\ntime.sleep(1.5)"}, params={"wait": "0.3"})
    assert longer.status_code == 202 and longer.json()["state"] in ("queued", "waiting", "running")
    assert server.call("GET", f"/runs/{longer.json()['id']}", params={"wait": "20"})["state"] == "finished"
    # A client that hangs up while its submit waits never learns the run's id: the server cancels
    # the run, or the next statement would wait behind a minute of sleep.
    host, port = server.url.split("//", 1)[1].rsplit(":", 1)
    hung_up = http.client.HTTPConnection(host, int(port), timeout=30)
    hung_up.request(
        "POST",
        f"{API_PREFIX}{runs}?wait=20",
        json.dumps({"code": "import time\ntime.sleep(60)"}),
        {"Authorization": f"token {server.token}", "Content-Type": "application/json"},
    )
    time.sleep(1.0)
    hung_up.close()
    after = server.request("POST", runs, {"code": "'after'"}, params={"wait": "20"})
    assert after.status_code == 200 and after.json()["result"]["text"] == "'after'"


def test_kernels_reattach_after_a_restart_and_interrupts_cancel(gateway_kernel, gateway, livy):
    server, kernel, client = gateway_kernel("work/etl.ipynb")
    assert execute(client, "%%spark\nx = 41").ok
    [session] = live_sessions(server, "work/etl.ipynb")
    assert_interrupt_cancels(server, kernel, client, "%%spark\nimport time\ntime.sleep(60)")
    statements = livy.get(f"{gateway.url}/sessions/{session['remote_id']}/statements", timeout=10).json()
    assert statements["statements"][-1]["state"] == "cancelled"
    client.stop_channels()
    client = restarted(server, kernel)
    try:
        began = time.monotonic()
        cell = execute(client, "%%spark\nx + 1")
        reattach = time.monotonic() - began
        assert cell.ok and cell.stdout.strip() == "42", "the notebook's remote state outlived its kernel"
        assert reattach < 1.0, f"re-attaching took {reattach:.2f} s"
        assert live_sessions(server, "work/etl.ipynb") == [{**session, "runs": []}]
    finally:
        client.stop_channels()


def test_an_interrupt_while_the_cells_submit_waits_for_its_answer_cancels_the_statement(gateway_kernel):
    server, kernel, client = gateway_kernel("work/early.ipynb")
    assert execute(client, "%%spark\n'warm'").ok
    sent = client.execute("%%spark\nimport time\ntime.sleep(60)")
    while not (
        (message := client.get_iopub_msg(timeout=30))["msg_type"] == "execute_input"
        and message["parent_header"]["msg_id"] == sent
    ):
        pass
    time.sleep(0.15)  # the cell's submit is on its way: its answer waits up to 0.5 s for the run
    server.call("POST", f"/kernels/{kernel}/interrupt", api="/api")
    assert client.get_shell_msg(timeout=30)["content"]["ename"] == "KeyboardInterrupt"
    began = time.monotonic()
    cell = execute(client, "%%spark\n'next'")
    assert cell.ok and cell.stdout.strip() == "'next'"
    assert time.monotonic() - began < 20, "the next cell waited behind the interrupted one"


def runs_asked(server) -> int:
    """How many times the server has answered ``GET /runs/{id}``, from its Prometheus metrics."""
    metrics = server.request("GET", "/metrics", api="").text
    labels = ('handler="prophecy_jupyter.server.handlers.RunHandler"', 'method="GET"')
    return sum(
        int(float(line.rsplit(" ", 1)[1]))
        for line in metrics.splitlines()
        if line.startswith("http_request_duration_seconds_count{") and all(label in line for label in labels)
    )


def test_a_running_cell_asks_the_server_a_few_times_a_second_and_shows_its_bar(gateway_kernel):
    server, _, client = gateway_kernel("work/long.ipynb")
    assert execute(client, "%%spark\n'warm'").ok
    before = runs_asked(server)
    cell = execute(client, "%%spark\nimport time\ntime.sleep(3)\n'slept'")
    asked = runs_asked(server) - before
    assert cell.ok and cell.stdout.strip() == "'slept'"
    assert any("on default/gw" in text for text in cell.data()), "the progress bar was shown"
    # the submit's answer waits until the bar is due (0.5 s), then one long poll per redraw (0.25 s)
    assert 3 <= asked <= 16, f"{asked} requests for a 3 s cell"


def test_a_kernel_keeps_its_session_and_finds_it_again_when_closed_elsewhere_or_ended(
    gateway_kernel, gateway, livy
):
    server, _, client = gateway_kernel("again.ipynb")
    assert execute(client, "%%spark\nx = 1").ok
    [first] = live_sessions(server, "again.ipynb")
    server.call("DELETE", f"/sessions/{first['id']}")  # closed in the sidebar
    cell = execute(client, "%%spark\nprint('x' in globals())")
    assert cell.ok and cell.stdout.strip().endswith("False"), cell.failure
    [second] = live_sessions(server, "again.ipynb")
    assert second["id"] != first["id"]
    livy.delete(f"{gateway.url}/sessions/{second['remote_id']}", timeout=60)
    assert server.call("GET", f"/sessions/{second['id']}")["state"] == "ended"
    told = execute(client, "%%spark\ny = 2")
    assert told.ok and "had ended" in told.stdout and "starting a new one" in told.stdout, told.stdout
    [third] = live_sessions(server, "again.ipynb")
    assert third["id"] == second["id"] and third["remote_id"] != second["remote_id"]


def test_a_restarted_server_takes_its_live_sessions_back(start, gateway, livy):
    server = start()
    add_gateway_fabric(server, gateway)
    for notebook, code in (("kept.ipynb", "kept = 'still here'"), ("lost.ipynb", "lost = 1")):
        session = server.call("POST", "/sessions", {"notebook": notebook, "fabric": "gw", "wait": True})
        run = server.call("POST", f"/sessions/{session['id']}/runs", {"code": code})
        assert server.call("GET", f"/runs/{run['id']}", params={"wait": "20"})["state"] == "finished"
    lost = live_sessions(server, "lost.ipynb")[0]
    server.stop()
    livy.delete(f"{gateway.url}/sessions/{lost['remote_id']}", timeout=60)
    restarted = start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        sessions = {s["notebook"]: s for s in restarted.call("GET", "/sessions")["sessions"]}
        if {"kept.ipynb", "lost.ipynb"} <= sessions.keys():
            break
        time.sleep(0.2)
    assert sessions["kept.ipynb"]["state"] == "idle"
    assert sessions["lost.ipynb"]["state"] == "ended"
    assert sessions["lost.ipynb"]["fabric"] == "default/gw", "named as live sessions are"
    assert "while the server was down" in sessions["lost.ipynb"]["ended_reason"]
    write_notebook(restarted.root / "lost.ipynb")
    client = restarted.client(restarted.start_kernel("lost.ipynb"))
    try:
        assert execute(client, "%load_ext prophecy_jupyter").ok
        assert execute(client, "%fabric attach gw").ok
        status = execute(client, "%fabric status").stdout
        assert "the last one ended (while the server was down; the fabric no longer knows it)" in status
        first_cell = execute(client, "%%spark\nlost")
        assert (
            "The session on fabric 'default/gw' had ended (while the server was down; the fabric no longer "
            "knows it); starting a new one. Variables from earlier cells are gone."
        ) in first_cell.stdout
        assert "NameError" in first_cell.failure, "said before the cell fails, not instead"
    finally:
        client.stop_channels()
    run = restarted.call("POST", f"/sessions/{sessions['kept.ipynb']['id']}/runs", {"code": "kept"})
    assert (
        restarted.call("GET", f"/runs/{run['id']}", params={"wait": "20"})["result"]["text"] == "'still here'"
    )


def test_idle_sessions_are_reaped_and_users_are_limited(start, gateway, livy):
    server = start("--ProphecyJupyter.idle_session_timeout=2", "--ProphecyJupyter.max_sessions_per_user=1")
    add_gateway_fabric(server, gateway)
    first = server.call("POST", "/sessions", {"notebook": "one.ipynb", "fabric": "gw", "wait": True})
    refused = server.request("POST", "/sessions", {"notebook": "two.ipynb", "fabric": "gw", "wait": True})
    assert refused.status_code == 429 and "1 live sessions" in refused.json()["message"]
    deadline = time.monotonic() + 20
    while live_sessions(server, "one.ipynb"):
        assert time.monotonic() < deadline, "the idle session was not closed"
        time.sleep(0.3)
    ended = [s for s in server.call("GET", "/sessions")["sessions"] if s["id"] == first["id"]]
    assert ended and "idle" in ended[0]["ended_reason"]
    # the session is reported ended as its close begins; the fabric forgets it once the close is done
    wait_until(
        lambda: livy.get(f"{gateway.url}/sessions/{first['remote_id']}", timeout=10).status_code == 404,
        30,
        "the gateway still has the idle session",
        every=0.2,
    )
    second = server.call("POST", "/sessions", {"notebook": "two.ipynb", "fabric": "gw", "wait": True})
    assert second["state"] == "idle"


def save_with_outputs(path, cells: list[tuple[str, Cell]]) -> None:
    """Write the cells and what they produced as a notebook file, as JupyterLab would."""
    notebook = nbformat.v4.new_notebook(
        metadata={"kernelspec": {"name": "prophecy", "display_name": "Prophecy"}}
    )
    for source, cell in cells:
        outputs = [
            nbformat.v4.output_from_msg(m)
            for m in cell.messages
            if m["msg_type"] in ("stream", "display_data", "execute_result", "error")
        ]
        notebook.cells.append(nbformat.v4.new_code_cell(source, outputs=outputs))
    nbformat.write(notebook, str(path))


def test_the_bridge_kernel_runs_every_cell_on_the_fabric(start, gateway, livy, data_dir):
    server = start()
    add_gateway_fabric(server, gateway)
    write_notebook(server.root / "Untitled.ipynb")
    kernel = server.start_kernel("Untitled.ipynb", kernel="prophecy")
    # Renamed after its kernel started, as JupyterLab does with a new notebook.
    (server.root / "Untitled.ipynb").rename(server.root / "bridge.ipynb")
    [started] = [s for s in server.call("GET", "/sessions", api="/api") if s["kernel"]["id"] == kernel]
    server.call("PATCH", f"/sessions/{started['id']}", {"path": "bridge.ipynb"}, api="/api")
    client = server.client(kernel)
    ran: list[tuple[str, Cell]] = []

    def run(code: str) -> Cell:
        ran.append((code, execute(client, code)))
        return ran[-1][1]

    try:
        unattached = execute(client, "1 + 1")
        assert not unattached.ok and "No fabric attached" in unattached.failure
        # Attached from outside the kernel, as the sidebar does: the next cell runs there.
        server.call("PUT", "/attachments", {"notebook": "bridge.ipynb", "fabric": "gw"})
        assert run("numbers = spark.range(10)\nremote_pid = __import__('os').getpid()").ok
        cell = run("numbers.count(), remote_pid == __import__('os').getpid()")
        assert cell.ok and cell.stdout.strip() == "(10, True)"
        local = run("%%local\nimport os\nos.getpid() != remote_pid if 'remote_pid' in dir() else 'local'")
        assert local.ok and local.result == "'local'", (
            "%%local runs in the kernel, which never saw remote_pid"
        )
        table = run("%%sql -o letters\nselect 1 as one, 'a' as letter")
        assert table.ok and any("<table" in html for html in table.data("text/html"))
        typed = run("%%local\nprint(letters.dtypes.to_dict())")
        assert typed.ok and "'one': dtype('int32')" in typed.stdout and "string" in typed.stdout, typed.stdout
        image = run(
            "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n"
            "plt.plot([1, 3, 2])\n%matplot plt"
        )
        assert image.ok and image.data("image/png"), image.failure
        failed = run("def broken():\n    return undefined_thing\nbroken()")
        assert not failed.ok and "NameError" in "\n".join(failed.error["traceback"])
        assert "broken()" in "\n".join(failed.error["traceback"]), "the remote traceback is shown"
        completion = client.complete("numbers.cou", 11, reply=True, timeout=30)["content"]
        assert any(m.startswith("numbers.count(") for m in completion["matches"]), completion
        assert completion["cursor_start"] == 0
        named = run("%%fabric gw\nnumbers.count()")
        assert named.ok and named.stdout.strip() == "10", "a first line %%fabric NAME picks the fabric"
        in_named = client.complete("%%fabric gw\nnumbers.cou", 23, reply=True, timeout=30)["content"]
        assert any(m.startswith("numbers.count(") for m in in_named["matches"]), in_named
        assert in_named["cursor_start"] == 12

        [session] = live_sessions(server, "bridge.ipynb")
        assert_interrupt_cancels(server, kernel, client, "import time\ntime.sleep(60)")
        statements = livy.get(f"{gateway.url}/sessions/{session['remote_id']}/statements", timeout=10).json()
        assert statements["statements"][-1]["state"] == "cancelled"
        assert run("numbers.count()").stdout.strip() == "10", "the session is usable after the interrupt"
        server.call("DELETE", "/attachments", params={"notebook": "bridge.ipynb"})
        detached = execute(client, "numbers.count()")
        assert not detached.ok and "No fabric attached" in detached.failure
    finally:
        client.stop_channels()
        server.call("DELETE", f"/kernels/{kernel}", api="/api")
    save_with_outputs(server.root / "bridge.ipynb", ran)
    server.stop()
    secret = gateway.token.encode()
    for folder in (server.root, data_dir, server.log.parent):
        for path in folder.rglob("*"):
            assert not path.is_file() or secret not in path.read_bytes(), f"the fabric's secret is in {path}"


def test_the_bridge_kernel_runs_the_quickstart_notebook_on_the_local_fabric(start):
    server = start()
    notebook = json.loads((Path(__file__).parents[1] / "notebooks" / "quickstart.ipynb").read_text())
    (server.root / "quickstart.ipynb").write_text(json.dumps(notebook))
    kernel = server.start_kernel("quickstart.ipynb", kernel="prophecy")
    client = server.client(kernel)
    try:
        cells = [
            execute(client, "".join(c["source"]), timeout=300)
            for c in notebook["cells"]
            if c["cell_type"] == "code"
        ]
        for cell in cells:
            assert cell.ok, cell.failure
        output = "".join(cell.stdout for cell in cells)
        assert "20,000 orders" in output and "Best region:" in output
        assert re.search(r"orders\s+int64", output) and re.search(r"revenue\s+decimal128", output), output
        [session] = live_sessions(server, "quickstart.ipynb")
        assert session["fabric"] == "local" and session["state"] == "idle"
    finally:
        client.stop_channels()
        server.call("DELETE", f"/kernels/{kernel}", api="/api")


def test_a_notebook_on_a_snowflake_fabric_keeps_its_session_across_a_kernel_restart(start):
    with snowflake_stand_in(Accounts(passwords={"ana": "ana-password"})) as snowflake:
        server = start()
        settings = {"account": "fakesnow", "user": "ana", "host": "127.0.0.1", "port": snowflake.port}
        spec = {"name": "sf", "kind": "snowflake", "settings": {**settings, "protocol": "http"}}
        fabric = server.call("POST", "/teams/default/fabrics", spec)
        server.call("PUT", f"/fabrics/{fabric['id']}/credential", {"secret": "ana-password"})
        kernel, client = attached_kernel(server, "snow.ipynb", "sf")
        try:
            assert execute(client, "%%spark\nx = session.sql('select 41 as a').collect()[0]['A']").ok
            query = "select 7::number(4,0) as i, 2.5::number(5,2) as n, 'x' as s"
            cell = execute(client, f"%%sql -o frame\n{query}")
            assert cell.ok, cell.failure
            shown = "\n".join(cell.data())
            query_id = re.search(r"Query id: ([0-9a-f-]{36})", shown)
            assert query_id, shown
            attrs = execute(client, "print(frame.attrs['query_id'])")
            assert attrs.stdout.strip() == query_id.group(1), "the DataFrame carries its query id"
            dtypes = execute(client, "print({c: str(t) for c, t in frame.dtypes.items()}, frame['I'][0])")
            expected = "{'I': 'Int16', 'N': 'decimal128(5, 2)[pyarrow]', 'S': 'string'} 7"
            assert dtypes.stdout.strip() == expected
        finally:
            client.stop_channels()
        client = restarted(server, kernel)
        try:
            cell = execute(client, "%%spark\nprint(x + 1)")
            assert cell.ok and cell.stdout.strip() == "42", "the Snowpark session outlived the kernel"
        finally:
            client.stop_channels()
