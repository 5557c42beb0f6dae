"""The magics in a real IPython kernel (jupyter_client), running on the test gateway."""

from __future__ import annotations

import json
import re
import time

import pytest
from jupyter_client.manager import start_new_kernel

from prophecy_jupyter.vault.keys import new_key
from tests.conftest import open_services
from tests.servers.kernels import execute

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def kernel_env(gateway, tmp_path_factory):
    directory = tmp_path_factory.mktemp("kernel-data")
    key = new_key()
    env = {"PROPHECY_JUPYTER_DATA_DIR": str(directory), "PROPHECY_JUPYTER_KEY": key}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        open_services(directory, gateway.url, gateway.token).close()
    return env, directory


@pytest.fixture(scope="module")
def kernel(kernel_env):
    env, _ = kernel_env
    manager, client = start_new_kernel(kernel_name="python3", env={**__import__("os").environ, **env})
    assert execute(client, "%load_ext prophecy_jupyter").ok
    yield manager, client
    client.stop_channels()
    manager.shutdown_kernel(now=True)


def attach(client) -> None:
    cell = execute(client, "%fabric attach gw")
    assert cell.ok and "Attached to fabric 'default/gw'" in cell.stdout


def remote_session_id(client) -> int:
    status = execute(client, "%fabric status").stdout
    return int(re.search(r"Session: (\d+)", status).group(1))


def test_cells_need_an_attached_fabric(kernel):
    _, client = kernel
    cell = execute(client, "%%spark\n1")
    assert not cell.ok and "No fabric attached" in cell.failure
    listing = execute(client, "%fabric list").stdout
    assert "local" in listing and "gw" in listing


def test_spark_cells_keep_state_and_sql_brings_typed_pandas(kernel):
    _, client = kernel
    attach(client)
    first = execute(
        client,
        "%%spark\nrows = spark.range(5).selectExpr('id', 'cast(id as int) as n', 'id / 2 as half')\n"
        "print('made', rows.count())",
    )
    # a session that takes over 5 s to start says so first ("Still starting the session ...")
    assert first.ok and first.stdout.strip().splitlines()[-1] == "made 5"
    second = execute(client, "%%spark\nrows.createOrReplaceTempView('numbers')\nrows.count()")
    assert second.ok and second.stdout.strip() == "5"
    sql = execute(
        client, "%%sql -o df\nselect id, n, half, cast(null as string) as nothing from numbers order by id"
    )
    assert sql.ok, sql.error
    assert any("<table" in html for html in sql.data("text/html")), "the table is displayed"
    dtypes = execute(client, "print({c: str(t) for c, t in df.dtypes.items()}, df['n'].tolist())")
    assert dtypes.stdout.strip() == (
        "{'id': 'int64', 'n': 'int32', 'half': 'Float64', 'nothing': 'string'} [0, 1, 2, 3, 4]"
    )
    fetched = execute(client, "%%spark -o rows\nrows.count()")
    assert fetched.ok and "Stored 5 rows in the pandas DataFrame 'rows'" in fetched.stdout
    assert execute(client, "int(rows['id'].sum())").result == "10"


def test_row_limit_is_visible(kernel):
    _, client = kernel
    attach(client)
    cell = execute(client, "%%sql -n 3\nselect * from range(10)")
    assert cell.ok
    notices = [t for t in cell.data() if "Showing the first 3 rows" in t]
    assert notices and "-n -1" in notices[0]
    everything = execute(client, "%%sql -n -1 -q -o all_rows\nselect * from range(10)")
    assert everything.ok and execute(client, "len(all_rows)").result == "10"


def test_remote_errors_fail_the_cell_with_the_remote_traceback(kernel):
    _, client = kernel
    attach(client)
    cell = execute(client, "%%spark\ndef broken():\n    return 1 / 0\nbroken()")
    assert not cell.ok
    traceback = "\n".join(cell.error["traceback"])
    assert "ZeroDivisionError: division by zero" in traceback and "in broken" in traceback
    assert "prophecy_jupyter" not in traceback, "our local frames are not shown"
    sql = execute(client, "%%sql\nselect * from no_such_table")
    assert not sql.ok and "no_such_table" in "\n".join(sql.error["traceback"])


def test_progress_bar_is_shown_while_a_job_runs(kernel):
    _, client = kernel
    attach(client)
    cell = execute(
        client,
        "%%spark\nimport time\n"
        "spark.sparkContext.parallelize(range(12), 6).map(lambda x: time.sleep(0.5) or x).count()",
    )
    assert cell.ok and cell.stdout.strip() == "12"
    bars = [t for t in cell.data() if "on default/gw" in t]
    assert bars and any(re.search(r"\[#*-*\]\s+\d+%", t) for t in bars)
    assert any("<progress" in h for h in cell.data("text/html"))


def test_interrupt_cancels_the_remote_statement(kernel, gateway, livy):
    manager, client = kernel
    attach(client)
    execute(client, "%%spark\n'warm'")
    session_id = remote_session_id(client)
    started = time.monotonic()
    message_id = client.execute("%%spark\nimport time\ntime.sleep(120)")
    time.sleep(2)
    manager.interrupt_kernel()
    reply = client.get_shell_msg(timeout=30)
    assert reply["parent_header"]["msg_id"] == message_id
    assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "KeyboardInterrupt"
    assert time.monotonic() - started < 20
    statements = livy.get(f"{gateway.url}/sessions/{session_id}/statements", timeout=10).json()["statements"]
    assert statements[-1]["state"] == "cancelled"
    assert execute(client, "%%spark\n'still alive'").stdout.strip() == "'still alive'"


def test_configure_local_logs_and_detach(kernel):
    _, client = kernel
    attach(client)
    execute(client, "%%spark\n1")
    configured = execute(client, '%%configure\n{"conf": {"spark.sql.shuffle.partitions": "7"}}')
    assert configured.ok and "Restarting the session" in configured.stdout
    check = execute(client, "%%spark\nspark.conf.get('spark.sql.shuffle.partitions')")
    assert check.stdout.strip() == "'7'"
    bad = execute(client, '%%configure\n{"confs": {}}')
    assert not bad.ok and "confs: not a session setting" in bad.failure
    local = execute(client, "%%local\nlocal_only = 21\nlocal_only * 2")
    assert local.ok and local.result == "42"
    logs = execute(client, "%fabric logs -n 5")
    assert logs.ok and "ready" in logs.stdout
    detached = execute(client, "%fabric detach")
    assert "Detached from fabric 'default/gw' and closed its session" in detached.stdout


def test_attachment_is_read_from_the_notebook_metadata(kernel_env, tmp_path):
    env, _ = kernel_env
    notebook = tmp_path / "attached.ipynb"
    notebook.write_text(
        json.dumps(
            {"cells": [], "metadata": {"prophecy": {"fabric": "gw"}}, "nbformat": 4, "nbformat_minor": 5}
        )
    )
    import os

    manager, client = start_new_kernel(
        kernel_name="python3", env={**os.environ, **env, "JPY_SESSION_NAME": str(notebook)}
    )
    try:
        execute(client, "%load_ext prophecy_jupyter")
        cell = execute(client, "%%spark\n6 * 7")
        assert cell.ok and cell.stdout.strip() == "42"
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def test_fabric_with_no_argument_is_a_picker_and_session_panel(kernel):
    _, client = kernel
    shown = execute(client, "%fabric")
    assert shown.ok and shown.data("application/vnd.jupyter.widget-view+json"), shown.messages
    # The picker's buttons, pressed in the kernel as the widget frontend would.
    script = """
from prophecy_jupyter.magics.widgets import FabricPicker
picker = FabricPicker(get_ipython().magics_manager.registry["FabricMagics"])
print("choices:", [value for _, value in picker.fabrics.options])
picker.fabrics.value = "default/gw"
picker.attach_button.click()
print("attached:", picker.status.value)
"""
    picked = execute(client, script)
    assert picked.ok, picked.failure
    assert "'local'" in picked.stdout and "'default/gw'" in picked.stdout
    assert "attached: Attached to <b>default/gw</b>" in picked.stdout
    execute(client, "%%spark\n1")
    panel = execute(client, "picker.refresh_button.click()\nprint(picker.status.value)")
    assert re.search(r"session \d+ is <b>idle</b>", panel.stdout), panel.stdout
    detached = execute(client, "picker.detach_button.click()\nprint(picker.status.value)")
    assert "Not attached" in detached.stdout
    refused = execute(client, "picker.restart_button.click()\nprint(picker.status.value)")
    assert "No fabric attached" in refused.stdout, "a failed action is shown in the panel"
