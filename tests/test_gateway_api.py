"""The gateway's Livy REST contract, with real PySpark behind it."""

from __future__ import annotations

import base64
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import textwrap
import threading
import time

import psutil
import pytest
import requests

from prophecy_jupyter.gateway.protocol import MAX_SOCKET_PATH
from tests.servers.gateway import run_statement, start_gateway, wait_for_state, wait_for_statement
from tests.waiting import wait_until

pytestmark = pytest.mark.spark


def test_version_and_unknown_route(gateway, livy):
    version = livy.get(f"{gateway.url}/version", timeout=10).json()
    assert version["version"].startswith("0.9")
    assert version["prophecyGateway"]["longPoll"] is True
    missing = livy.get(f"{gateway.url}/nothing-here", timeout=10)
    assert missing.status_code == 404
    assert "msg" in missing.json()


def test_token_is_required(gateway):
    response = requests.get(f"{gateway.url}/sessions", timeout=10)
    assert response.status_code == 401
    wrong = requests.get(f"{gateway.url}/sessions", headers={"Authorization": "Bearer nope"}, timeout=10)
    assert wrong.status_code == 401
    basic = requests.get(f"{gateway.url}/sessions", auth=("anyone", gateway.token), timeout=10)
    assert basic.status_code == 200


def test_a_gateway_whose_port_is_taken_says_so_and_leaves_nothing_behind(tmp_path):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        port = str(taken.getsockname()[1])
        command = [sys.executable, "-m", "prophecy_jupyter.cli", "gateway", "--port", port, "--no-auth"]
        failed = subprocess.run(
            command, env={**os.environ, "TMPDIR": str(tmp_path)}, capture_output=True, text=True, timeout=60
        )
    finally:
        taken.close()
    assert failed.returncode != 0 and "Address already in use" in failed.stderr, failed.stderr
    assert os.listdir(tmp_path) == [], "no work folder is left"


def test_a_gateway_stopped_while_its_jvm_launches_leaves_nothing_behind(monkeypatch):
    scratch = tempfile.mkdtemp(prefix="gw-")  # short: the gateway's socket path has a limit
    try:
        monkeypatch.setenv("TMPDIR", scratch)
        gateway = start_gateway()
        assert os.path.dirname(gateway.work_dir) == scratch
        java_temp = os.path.join(gateway.work_dir, "tmp")
        wait_until(lambda: os.path.isdir(java_temp) and os.listdir(java_temp), 60, "no JVM starts")
        gateway.process.send_signal(signal.SIGTERM)  # while its SparkContext is being made
        gateway.process.wait(60)
        assert gateway.process.returncode == 0

        def launched_by_it() -> list[psutil.Process]:
            processes = psutil.process_iter(["cmdline"])
            return [p for p in processes if scratch in " ".join(p.info["cmdline"] or ())]

        wait_until(lambda: not launched_by_it(), 60, "the gateway's JVM outlives it")
        assert os.listdir(scratch) == [], "a JVM made files after its gateway removed its folder"
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def test_a_gateway_in_a_long_temporary_folder_runs_statements(monkeypatch, tmp_path):
    long_folder = tmp_path / ("t" * 70)
    long_folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(long_folder))
    gateway = start_gateway()
    try:
        socket_path = os.path.join(gateway.work_dir, "interpreters.sock")
        assert len(socket_path) > MAX_SOCKET_PATH, "too long to bind or reach as it is"
        created = requests.post(f"{gateway.url}/sessions", json={"kind": "pyspark"}, timeout=10)
        assert created.status_code == 201, created.text
        wait_for_state(gateway.url, created.json()["id"], {"idle"})
        output = run_statement(gateway.url, created.json()["id"], "print(spark.range(3).count())")["output"]
        assert output["data"]["text/plain"].strip() == "3"
    finally:
        gateway.stop()


def test_session_lifecycle_by_id_and_name(gateway, livy, new_session):
    session_id = new_session(name="lifecycle-test", conf={"spark.sql.shuffle.partitions": "3"})
    url = gateway.url
    by_id = livy.get(f"{url}/sessions/{session_id}", timeout=10).json()
    by_name = livy.get(f"{url}/sessions/lifecycle-test", timeout=10).json()
    assert by_id["id"] == by_name["id"] == session_id
    for key in (
        "appId",
        "owner",
        "proxyUser",
        "kind",
        "appInfo",
        "log",
        "ttl",
        "driverMemory",
        "conf",
        "heartbeatTimeoutInSecond",
        "jars",
        "numExecutors",
        "pyFiles",
        "queue",
    ):
        assert key in by_id
    assert by_id["state"] == "idle" and by_id["kind"] == "pyspark"
    assert by_id["appId"].startswith("local-")
    assert livy.get(f"{url}/sessions/{session_id}/state", timeout=10).json() == {
        "id": session_id,
        "state": "idle",
    }
    listing = livy.get(f"{url}/sessions", timeout=10).json()
    assert listing["total"] >= 1 and any(s["id"] == session_id for s in listing["sessions"])
    log = livy.get(f"{url}/sessions/{session_id}/log", timeout=10).json()
    assert set(log) == {"id", "from", "total", "log"} and log["total"] >= 1
    # the session's own SparkSession got its runtime conf
    out = run_statement(
        url, session_id, "spark.conf.get('spark.sql.shuffle.partitions')", headers=gateway.headers()
    )
    assert out["output"]["data"]["text/plain"] == "'3'"
    duplicate = livy.post(f"{url}/sessions", json={"kind": "pyspark", "name": "lifecycle-test"}, timeout=10)
    assert duplicate.status_code == 400 and "Duplicate session name" in duplicate.json()["msg"]
    deleted = livy.delete(f"{url}/sessions/{session_id}", timeout=60)
    assert deleted.json() == {"msg": "deleted"}
    gone = livy.get(f"{url}/sessions/{session_id}", timeout=10)
    assert gone.status_code == 404 and gone.json() == {"msg": f"Session '{session_id}' not found."}


def test_request_errors_have_livy_shapes(gateway, livy, new_session):
    url = gateway.url
    unknown_field = livy.post(f"{url}/sessions", json={"kind": "pyspark", "bogus": 1}, timeout=10)
    assert unknown_field.status_code == 400
    assert isinstance(unknown_field.json(), str) and "bogus" in unknown_field.json()
    bad_kind = livy.post(f"{url}/sessions", json={"kind": "cobol"}, timeout=10)
    assert bad_kind.status_code == 400 and isinstance(bad_kind.json(), str)
    scala = livy.post(f"{url}/sessions", json={"kind": "spark"}, timeout=10)
    assert scala.status_code == 400 and "not supported" in scala.json()["msg"]
    bad_ttl = livy.post(f"{url}/sessions", json={"kind": "pyspark", "ttl": "soon"}, timeout=10)
    assert bad_ttl.status_code == 400 and bad_ttl.json()["msg"].startswith("Rejected")
    bad_json = livy.post(f"{url}/sessions", data="{not json", timeout=10)
    assert bad_json.status_code == 400 and isinstance(bad_json.json(), str)
    session_id = new_session()
    missing = livy.get(f"{url}/sessions/{session_id}/statements/999", timeout=10)
    assert missing.status_code == 404 and missing.json() == "Statement not found"


def test_statement_on_starting_session_is_illegal_state(gateway, livy):
    created = livy.post(f"{gateway.url}/sessions", json={"kind": "pyspark"}, timeout=10).json()
    try:
        response = livy.post(
            f"{gateway.url}/sessions/{created['id']}/statements", json={"code": "1"}, timeout=10
        )
        assert response.status_code == 500
        assert response.json() == "java.lang.IllegalStateException: Session is in state starting"
    finally:
        livy.delete(f"{gateway.url}/sessions/{created['id']}", timeout=60)


def test_statements_keep_state_and_report_outputs(gateway, livy, new_session):
    url, headers = gateway.url, gateway.headers()
    session_id = new_session()
    first = run_statement(
        url, session_id, "x = spark.range(10).count()\nprint('counted')\nx", headers=headers
    )
    assert first["state"] == "available" and first["id"] == 0
    assert first["output"] == {"status": "ok", "execution_count": 0, "data": {"text/plain": "counted\n10"}}
    assert first["progress"] == 1.0 and first["completed"] >= first["started"] > 0
    second = run_statement(url, session_id, "x * 2", headers=headers)
    assert second["output"]["data"]["text/plain"] == "20"
    as_json = run_statement(url, session_id, "d = {'a': [1, 2]}\n%json d", headers=headers)
    assert as_json["output"]["data"]["application/json"] == {"a": [1, 2]}
    table = run_statement(
        url, session_id, "rows = [{'n': 1, 's': 'a'}, {'n': 2, 's': None}]\n%table rows", headers=headers
    )
    assert table["output"]["data"]["application/vnd.livy.table.v1+json"] == {
        "headers": [{"name": "n", "type": "INT_TYPE"}, {"name": "s", "type": "STRING_TYPE"}],
        "data": [[1, "a"], [2, None]],
    }
    sql = run_statement(url, session_id, "select 1 as a, 'x' as b", kind="sql", headers=headers)
    payload = sql["output"]["data"]["application/json"]
    assert [f["name"] for f in payload["schema"]["fields"]] == ["a", "b"] and payload["data"] == [[1, "x"]]
    listing = livy.get(f"{url}/sessions/{session_id}/statements", params={"order": "desc"}, timeout=10).json()
    assert listing["total_statements"] == 5
    assert [s["id"] for s in listing["statements"]] == [4, 3, 2, 1, 0]


def test_errors_carry_remote_traceback(gateway, new_session):
    session_id = new_session()
    code = textwrap.dedent("""
        def inner():
            raise ValueError("bad value")
        inner()
    """)
    out = run_statement(gateway.url, session_id, code, headers=gateway.headers())["output"]
    assert out["status"] == "error" and out["ename"] == "ValueError" and out["evalue"] == "bad value"
    text = "".join(out["traceback"])
    assert "in inner" in text and 'raise ValueError("bad value")' in text
    assert "repl.py" not in text and "interpreter.py" not in text
    sql_error = run_statement(
        gateway.url, session_id, "select * from no_such_table", kind="sql", headers=gateway.headers()
    )["output"]
    assert sql_error["status"] == "error" and "no_such_table" in sql_error["evalue"]


def test_progress_of_a_multi_stage_job(gateway, livy, new_session):
    session_id = new_session()
    # Four waves of tasks as wide as the machine, then one: progress moves in fifths on any machine.
    code = textwrap.dedent("""
        import time
        slots = spark.sparkContext.defaultParallelism
        rdd = spark.sparkContext.parallelize(range(8 * slots), 4 * slots)
        rdd = rdd.map(lambda x: (x % slots, time.sleep(0.5) or x))
        rdd.reduceByKey(lambda a, b: a + b, slots).map(lambda kv: time.sleep(0.5) or kv).count() == slots
    """)
    created = livy.post(f"{gateway.url}/sessions/{session_id}/statements", json={"code": code}, timeout=10)
    statement_id = created.json()["id"]
    seen = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        statement = livy.get(
            f"{gateway.url}/sessions/{session_id}/statements/{statement_id}", timeout=10
        ).json()
        seen.append(statement["progress"])
        if statement["state"] == "available":
            break
        time.sleep(0.1)
    assert statement["output"]["data"]["text/plain"] == "True"
    middle = sorted({p for p in seen if 0 < p < 1})
    assert len(middle) >= 3, f"progress went {seen}"
    assert seen == sorted(seen), "progress never goes back"
    assert seen[-1] == 1.0


def test_cancel_a_long_spark_job_and_driver_code(gateway, livy, new_session):
    url = gateway.url
    session_id = new_session()
    job = (
        "import time\nspark.sparkContext.parallelize(range(64), 64).map(lambda x: time.sleep(1) or x).count()"
    )
    statement_id = livy.post(
        f"{url}/sessions/{session_id}/statements", json={"code": job}, timeout=10
    ).json()["id"]
    queued_id = livy.post(
        f"{url}/sessions/{session_id}/statements", json={"code": "'queued'"}, timeout=10
    ).json()["id"]
    time.sleep(2)
    cancel_queued = livy.post(f"{url}/sessions/{session_id}/statements/{queued_id}/cancel", timeout=10)
    assert cancel_queued.json() == {"msg": "canceled"}
    assert (
        livy.get(f"{url}/sessions/{session_id}/statements/{queued_id}", timeout=10).json()["state"]
        == "cancelled"
    )
    started = time.monotonic()
    assert livy.post(f"{url}/sessions/{session_id}/statements/{statement_id}/cancel", timeout=10).json() == {
        "msg": "canceled"
    }
    done = wait_for_statement(url, session_id, statement_id, 30, gateway.headers())
    assert done["state"] == "cancelled" and time.monotonic() - started < 10
    sleeper = livy.post(
        f"{url}/sessions/{session_id}/statements", json={"code": "import time\ntime.sleep(120)"}, timeout=10
    ).json()["id"]
    time.sleep(0.5)
    started = time.monotonic()
    livy.post(f"{url}/sessions/{session_id}/statements/{sleeper}/cancel", timeout=10)
    assert wait_for_statement(url, session_id, sleeper, 30, gateway.headers())["state"] == "cancelled"
    assert time.monotonic() - started < 5
    # the session is still usable, and so is its Spark
    after = run_statement(url, session_id, "spark.range(7).count()", headers=gateway.headers())
    assert after["output"]["data"]["text/plain"] == "7"
    unknown = livy.post(f"{url}/sessions/{session_id}/statements/4242/cancel", timeout=10)
    assert unknown.json() == {"msg": "canceled"}


def test_long_poll_answers_as_soon_as_the_statement_changes(gateway, livy, new_session):
    session_id = new_session()
    statement_id = livy.post(
        f"{gateway.url}/sessions/{session_id}/statements",
        json={"code": "import time\ntime.sleep(0.3)\n'ok'"},
        timeout=10,
    ).json()["id"]
    started = time.monotonic()
    state = None
    while state != "available" and time.monotonic() - started < 10:
        state = livy.get(
            f"{gateway.url}/sessions/{session_id}/statements/{statement_id}", params={"wait": "5"}, timeout=15
        ).json()["state"]
    assert state == "available"
    assert time.monotonic() - started < 2, "the long poll waited past the statement's end"


def test_a_submit_asked_to_wait_answers_with_the_finished_statement(gateway, livy, new_session):
    session_id = new_session()
    statements = f"{gateway.url}/sessions/{session_id}/statements"
    asked = time.monotonic()
    short = livy.post(statements, params={"wait": "5"}, json={"code": "6 * 7"}, timeout=15)
    assert short.status_code == 201 and time.monotonic() - asked < 2, "answered once the statement ended"
    assert (short.json()["state"], short.json()["output"]["data"]["text/plain"]) == ("available", "42")
    asked = time.monotonic()
    long = livy.post(
        statements, params={"wait": "0.3"}, json={"code": "import time\ntime.sleep(3)"}, timeout=15
    )
    held = time.monotonic() - asked
    assert long.json()["state"] == "running" and 0.3 <= held < 2, f"answered after {held:.2f} s"
    livy.post(f"{statements}/{long.json()['id']}/cancel", timeout=10)
    total = livy.get(statements, timeout=10).json()["total_statements"]
    for wrong in ("soon", "nan"):
        refused = livy.post(statements, params={"wait": wrong}, json={"code": "1"}, timeout=10)
        assert refused.status_code == 400 and "wait must be a number" in refused.text
    assert livy.get(statements, timeout=10).json()["total_statements"] == total, (
        "a refused submit queues nothing"
    )


def test_a_submit_held_on_a_session_that_dies_answers_at_once(gateway, livy, new_session):
    session_id = new_session()
    statements = f"{gateway.url}/sessions/{session_id}/statements"
    pid = livy.post(statements, params={"wait": "30"}, json={"code": "import os\nos.getpid()"}, timeout=40)
    interpreter = int(pid.json()["output"]["data"]["text/plain"])
    threading.Timer(1.0, os.kill, (interpreter, signal.SIGKILL)).start()
    asked = time.monotonic()
    held = livy.post(
        statements, params={"wait": "30"}, json={"code": "import time\ntime.sleep(60)"}, timeout=40
    )
    assert held.status_code == 201 and time.monotonic() - asked < 10, "answered once the session died"
    assert wait_for_state(gateway.url, session_id, {"dead"}, headers=gateway.headers()) == "dead"


def test_completion(gateway, livy, new_session):
    session_id = new_session()
    run_statement(gateway.url, session_id, "prophecy_value = 41", headers=gateway.headers())
    response = livy.post(
        f"{gateway.url}/sessions/{session_id}/completion",
        json={"code": "prophecy_v", "kind": "pyspark", "cursor": 10},
        timeout=10,
    )
    assert "prophecy_value" in response.json()["candidates"]


def test_idle_timeout_and_heartbeat_delete_sessions(gateway, livy, new_session):
    idle_id = new_session(ttl="2s")
    wait_for_state(gateway.url, idle_id, {"gone"}, timeout=15, headers=gateway.headers())
    heartbeat_id = new_session(heartbeatTimeoutInSecond=2)
    # the heartbeat session is kept while it is asked about, then deleted when nobody asks
    kept_until = time.monotonic() + 3
    while time.monotonic() < kept_until:
        assert livy.get(f"{gateway.url}/sessions/{heartbeat_id}/state", timeout=10).status_code == 200
        time.sleep(0.5)
    time.sleep(4)
    assert livy.get(f"{gateway.url}/sessions/{heartbeat_id}", timeout=10).status_code == 404


def test_batch_runs_spark_submit(gateway, livy, tmp_path):
    output = tmp_path / "out.txt"
    script = tmp_path / "job.py"
    script.write_text(
        textwrap.dedent(f"""
        import sys
        from pyspark.sql import SparkSession
        spark = SparkSession.builder.getOrCreate()
        n = spark.range(int(sys.argv[1])).count()
        open({str(output)!r}, "w").write(str(n))
        spark.stop()
    """)
    )
    created = livy.post(
        f"{gateway.url}/batches", json={"file": str(script), "args": ["42"], "name": "count-job"}, timeout=10
    )
    assert created.status_code == 201
    batch_id = created.json()["id"]
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        state = livy.get(f"{gateway.url}/batches/{batch_id}/state", timeout=10).json()["state"]
        if state in ("success", "dead", "killed"):
            break
        time.sleep(0.5)
    log = livy.get(f"{gateway.url}/batches/{batch_id}/log", params={"size": 1000}, timeout=10).json()
    assert state == "success", log
    assert output.read_text() == "42"
    assert log["total"] > 0 and any("exited with code 0" in line for line in log["log"])
    failing = tmp_path / "fail.py"
    failing.write_text("raise SystemExit(3)\n")
    bad = livy.post(f"{gateway.url}/batches", json={"file": str(failing)}, timeout=10).json()["id"]
    deadline = time.monotonic() + 120
    while livy.get(f"{gateway.url}/batches/{bad}", timeout=10).json()["state"] not in ("dead", "success"):
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert livy.get(f"{gateway.url}/batches/{bad}", timeout=10).json()["state"] == "dead"
    assert livy.delete(f"{gateway.url}/batches/{bad}", timeout=30).json() == {"msg": "deleted"}


def test_without_a_configured_token_the_gateway_makes_a_private_one(data_dir):
    gateway = start_gateway("--isolation", "process", token_file=True)
    try:
        token_path = data_dir / "gateway.token"
        assert stat.S_IMODE(token_path.stat().st_mode) == 0o600
        assert requests.get(f"{gateway.url}/sessions", timeout=10).status_code == 401
        token = token_path.read_text().strip()
        ok = requests.get(f"{gateway.url}/sessions", headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert ok.status_code == 200
    finally:
        gateway.stop()


def test_csrf_protection_and_isolation_without_a_shared_jvm():
    """A gateway in process isolation starts no JVM until a session asks; CSRF needs the header."""
    gateway = start_gateway("--isolation", "process", "--csrf-protection")
    try:
        without = requests.post(f"{gateway.url}/sessions", json={"kind": "pyspark"}, timeout=10)
        assert without.status_code == 400 and "CSRF" in without.text
        assert without.headers["Content-Type"].startswith("text/html")
        assert requests.get(f"{gateway.url}/sessions", timeout=10).status_code == 200
        unknown = requests.post(
            f"{gateway.url}/sessions",
            json={"kind": "pyspark", "x": 1},
            headers={"X-Requested-By": "test"},
            timeout=10,
        )
        assert unknown.status_code == 400
    finally:
        gateway.stop()


@pytest.mark.slow
def test_session_needing_its_own_jvm_is_isolated(gateway, livy, new_session):
    session_id = new_session(driverMemory="700m")
    log = livy.get(f"{gateway.url}/sessions/{session_id}/log", timeout=10).json()["log"]
    assert any("own JVM" in line for line in log)
    out = run_statement(
        gateway.url,
        session_id,
        "spark.sparkContext.getConf().get('spark.driver.memory'), spark.range(3).count()",
        headers=gateway.headers(),
    )
    assert out["output"]["data"]["text/plain"] == "('700m', 3)"


def test_sessions_share_the_jvm_but_not_their_state(gateway, new_session):
    first, second = new_session(), new_session()
    headers = gateway.headers()
    run_statement(
        gateway.url, first, "spark.range(3).createOrReplaceTempView('mine')\nsecret = 1", headers=headers
    )
    other = run_statement(
        gateway.url,
        second,
        "'secret' in globals(), [t.name for t in spark.catalog.listTables()]",
        headers=headers,
    )
    assert other["output"]["data"]["text/plain"] == "(False, [])"
    app_ids = {
        run_statement(gateway.url, s, "sc.applicationId", headers=headers)["output"]["data"]["text/plain"]
        for s in (first, second)
    }
    assert len(app_ids) == 1, "both sessions run on the one warm JVM"
    stop = run_statement(gateway.url, first, "spark.stop()", headers=headers)["output"]
    assert stop["status"] == "error" and "stays up" in stop["evalue"]


def test_image_output(gateway, new_session):
    session_id = new_session()
    code = (
        "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n"
        "plt.plot([1, 2])\n%matplot plt"
    )
    out = run_statement(gateway.url, session_id, code, headers=gateway.headers())["output"]
    assert base64.b64decode(out["data"]["image/png"]).startswith(b"\x89PNG")


def test_concurrent_statements_queue_in_order(gateway, livy, new_session):
    session_id = new_session()
    ids = []

    def submit(i: int) -> None:
        ids.append(
            livy.post(
                f"{gateway.url}/sessions/{session_id}/statements",
                json={"code": f"order = globals().get('order', []) + [{i}]\norder"},
                timeout=10,
            ).json()["id"]
        )

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    last = wait_for_statement(gateway.url, session_id, max(ids), 60, gateway.headers())
    assert len(eval(last["output"]["data"]["text/plain"])) == 5


def test_a_session_with_java_options_of_its_own_keeps_its_jvm_files_in_our_folder(gateway, new_session):
    options = {"spark.driver.extraJavaOptions": "-Dprophecy.probe=kept"}  # only a JVM of its own can
    session_id = new_session(conf=options)
    system = "spark.sparkContext._jvm.java.lang.System"
    code = f"print({system}.getProperty('prophecy.probe'), {system}.getProperty('java.io.tmpdir'))"
    output = run_statement(gateway.url, session_id, code, headers=gateway.headers())["output"]
    probe, java_temp = output["data"]["text/plain"].split()
    assert probe == "kept", "the session's own option is set"
    assert java_temp == os.path.join(gateway.work_dir, "tmp"), "and the gateway's folder is kept"
