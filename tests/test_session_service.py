"""The session service: sessions per notebook and fabric, one poller, progress, cancel, lifetimes."""

from __future__ import annotations

import datetime
import decimal
import itertools
import os
import signal
import time

import pandas as pd
import pytest
import requests

from prophecy_jupyter.engines.base import PollPolicy
from prophecy_jupyter.errors import Invalid, LimitReached
from prophecy_jupyter.results.model import RunState
from prophecy_jupyter.results.transport import sql_source
from prophecy_jupyter.services.settings import ServiceSettings
from tests.conftest import USER, open_services
from tests.servers.fault_proxy import FaultProxy
from tests.servers.gateway import start_gateway

pytestmark = pytest.mark.spark

RICH_QUERY = """
select cast(id as int) as i, id as l, cast(id * 1.5 as double) as d, cast(id as decimal(12, 2)) as dec,
       concat('row-', id) as s, id % 2 = 0 as b, date_add(date'2024-01-01', cast(id as int)) as dt,
       timestamp'2024-01-01 00:00:00' + make_interval(0, 0, 0, 0, 0, 0, id) as ts,
       if(id % 3 = 0, null, id) as maybe, array(id, id + 1) as arr, named_struct('k', id) as st
from range(0, {rows})
"""


def make_service(data_dir, url: str, token: str, **settings):
    """A session service over fresh services; ``service.shutdown()`` stops it (the store stays)."""
    return open_services(data_dir, url, token, ServiceSettings(**settings)).sessions


@pytest.fixture
def service(services):
    return services.sessions


@pytest.fixture
def plain_livy(gateway):
    """The gateway behind a proxy that hides its long poll: a server that only answers polls."""
    proxy = FaultProxy(gateway.url).start()
    proxy.add("GET", r"^/version$", "reply", body={"version": "0.8.0-incubating"}, times=1000)
    yield proxy
    proxy.stop()


def test_poll_policy_grows_geometrically_and_is_capped():
    policy = PollPolicy()
    assert policy.next_delay(0.0) == 0.003
    delays, elapsed = [], 0.003
    for _ in range(120):
        delay = policy.next_delay(elapsed)
        delays.append(delay)
        elapsed += delay
    assert delays == sorted(delays) and delays[-1] == 1.0
    growing = [b / a for a, b in itertools.pairwise(delays) if 0.005 < a < b < 1.0]
    assert growing and all(abs(r - 1.1) < 0.01 for r in growing)


def test_one_session_per_notebook_and_fabric(service):
    first = service.run(USER, "nb-a", "gw", "x = 1\nimport os\nos.getpid()")
    again = service.run(USER, "nb-a", "gw", "x + 1")
    other = service.run(USER, "nb-b", "gw", "'x' in globals()")
    assert first.state == again.state == other.state == RunState.FINISHED
    assert again.result.text == "2" and other.result.text == "False"
    assert first.session is again.session and first.session is not other.session
    assert first.session.remote.id != other.session.remote.id


def test_errors_come_back_with_the_remote_traceback(service):
    run = service.run(USER, "nb-err", "gw", "def f():\n    return {}['missing']\nf()")
    assert run.state == RunState.FAILED
    assert run.result.error_name == "KeyError" and "missing" in run.result.error_message
    assert any("in f" in line for line in run.result.traceback)


def test_adaptive_polling_against_a_server_that_only_answers_polls(data_dir, gateway, plain_livy):
    service = make_service(data_dir, plain_livy.url, gateway.token)
    try:
        service.run(USER, "nb-poll", "gw", "1")
        for seconds in (0.0, 0.5):
            run = service.run(USER, "nb-poll", "gw", f"import time\ntime.sleep({seconds})")
            server_time = run.remote_ms / 1000
            added = run.elapsed - server_time
            assert added < 0.05 + 0.1 * server_time, f"{added:.3f} s added to a {server_time:.3f} s statement"
            assert run.polls <= 40
        posts = plain_livy.requests_to("POST", r"/statements$")
        gets = [e for e in plain_livy.requests_to("GET", r"/statements/\d+$") if e.at > posts[-1].at]
        assert gets[0].at - posts[-1].answered_at < 0.03, "the first check follows the submit at once"
        assert not any("wait=" in e.path for e in gets), "no long poll against plain Livy"
    finally:
        service.shutdown()


def test_long_poll_against_our_gateway_adds_little(service):
    service.run(USER, "nb-long", "gw", "1")
    run = service.run(USER, "nb-long", "gw", "import time\ntime.sleep(0.5)")
    assert run.elapsed - run.remote_ms / 1000 < 0.03
    assert run.polls <= 3
    short = service.run(USER, "nb-long", "gw", "6 * 7")
    assert (short.result.text, short.polls) == ("42", 0), "the submit's answer says it finished"


def test_progress_and_cancel(service):
    run = service.submit(
        USER,
        "nb-cancel",
        "gw",
        "import time\nrdd = spark.sparkContext.parallelize(range(40), 40)\n"
        "rdd.map(lambda x: time.sleep(0.5) or x).count()",
    )
    deadline = time.monotonic() + 60
    while not (run.progress or 0) > 0:
        assert time.monotonic() < deadline and not run.done
        time.sleep(0.05)
    assert 0 < run.progress < 1 and run.state == RunState.RUNNING
    service.cancel(run)
    assert run.wait(15)
    assert run.state == RunState.CANCELLED
    assert service.run(USER, "nb-cancel", "gw", "spark.range(3).count()").result.text == "3"


def test_cancel_before_the_statement_is_sent(service):
    service.run(USER, "nb-early", "gw", "1")
    run = service.submit(USER, "nb-early", "gw", "import time\ntime.sleep(30)")
    service.cancel(run)
    assert run.wait(15) and run.state == RunState.CANCELLED


def test_a_killed_session_fails_the_run_and_the_next_cell_starts_a_new_one(service):
    pid = int(service.run(USER, "nb-kill", "gw", "import os\nos.getpid()").result.text)
    run = service.submit(USER, "nb-kill", "gw", "import time\ntime.sleep(60)")
    time.sleep(0.5)
    os.kill(pid, signal.SIGKILL)
    assert run.wait(10), "the session's end is noticed within seconds"
    assert run.state == RunState.FAILED and run.result.error_name == "SessionGone"
    assert "state is lost" in run.result.error_message
    notices: list[str] = []
    fresh = service.run(USER, "nb-kill", "gw", "'again'", notify=notices.append)
    assert fresh.result.text == "'again'"
    assert any("starting a new one" in n for n in notices)


def test_idle_sessions_are_closed(data_dir, gateway):
    service = make_service(data_dir, gateway.url, gateway.token, idle_session_timeout=1.0, tick_interval=0.2)
    try:
        run = service.run(USER, "nb-idle", "gw", "1")
        session_id = run.session.remote.id
        time.sleep(2.5)
        response = requests.get(f"{gateway.url}/sessions/{session_id}", headers=gateway.headers(), timeout=10)
        assert response.status_code == 404
        assert service.run(USER, "nb-idle", "gw", "2").result.text == "2"
    finally:
        service.shutdown()


@pytest.mark.slow
def test_keepalive_holds_the_session_through_a_long_cell(tmp_path, monkeypatch):
    """Livy's idle timer counts from the last submit, not from polls; a long cell outlives it
    unless the client keeps the session alive."""
    reaping = start_gateway("--idle-timeout", "3", token="reaping")
    try:
        cell = "import time\ntime.sleep(6)\n'survived'"
        for name, interval, survives in (("kept", 1.0, True), ("lost", 300.0, False)):
            directory = tmp_path / name
            monkeypatch.setenv("PROPHECY_JUPYTER_DATA_DIR", str(directory))
            service = make_service(directory, reaping.url, "reaping", keepalive_interval=interval)
            try:
                run = service.run(USER, "nb", "gw", cell)
                if survives:
                    assert run.result.text == "'survived'"
                else:
                    assert run.state == RunState.FAILED and run.result.error_name == "SessionGone"
            finally:
                service.shutdown()
    finally:
        reaping.stop()


def test_configure_restarts_a_live_session_and_applies_job_sizes(data_dir, gateway):
    built = open_services(
        data_dir,
        gateway.url,
        gateway.token,
        conf={"spark.sql.shuffle.partitions": "5"},
        job_sizes={"S": {"conf": {"spark.sql.shuffle.partitions": "2"}}},
    )
    service = built.sessions
    try:
        check = "spark.conf.get('spark.sql.shuffle.partitions')"
        assert service.run(USER, "nb", "gw", check).result.text == "'5'"
        messages: list[str] = []
        assert service.configure(USER, "nb", "gw", {"size": "S"}, messages.append) is True
        assert any("Restarting the session" in m for m in messages)
        assert service.run(USER, "nb", "gw", check).result.text == "'2'"
        assert service.configure(USER, "nb", "gw", {"size": "S"}, messages.append) is False
        with pytest.raises(Invalid, match="no job size 'XL'"):
            service.configure(USER, "nb", "gw", {"size": "XL"})
        with pytest.raises(Invalid, match="sizes: not a session setting"):
            service.configure(USER, "nb", "gw", {"sizes": "S"})
        kept = service.run(USER, "nb", "gw", check).result.text
        assert kept == "'2'", "a rejected change keeps the session"
    finally:
        service.shutdown()


def test_tables_arrive_typed_by_the_spark_schema_in_both_formats(service):
    query = sql_source(RICH_QUERY.format(rows=50))
    arrow = service.fetch_table(USER, "nb-t", "gw", query, limit=-1)
    rows = service.fetch_table(USER, "nb-t", "gw", query, limit=-1, prefer_arrow=False)
    assert arrow.ok and rows.ok
    expected = {
        "i": "int32",
        "l": "int64",
        "d": "float64",
        "dec": "decimal128(12, 2)[pyarrow]",
        "s": "string",
        "b": "boolean",
        "dt": "date32[day][pyarrow]",
        "maybe": "Int64",
        "arr": "object",
        "st": "object",
    }
    for frame in (arrow.table, rows.table):
        dtypes = {c: str(t) for c, t in frame.dtypes.items()}
        assert {k: dtypes[k] for k in expected} == expected
        assert str(frame.dtypes["ts"]).startswith("datetime64[us,")
        assert len(frame) == 50
        assert frame["dec"][3] == decimal.Decimal("3.00") and frame["dt"][3] == datetime.date(2024, 1, 4)
        assert frame["maybe"].isna().sum() == 17 and frame["maybe"][1] == 1
        assert frame["arr"][2] == [2, 3] and frame["st"][2] == {"k": 2}
    pd.testing.assert_frame_equal(arrow.table, rows.table)


def test_large_tables_come_in_chunks_and_truncation_is_reported(data_dir, gateway):
    service = make_service(data_dir, gateway.url, gateway.token, chunk_chars=4096)
    try:
        query = sql_source(RICH_QUERY.format(rows=5000))
        full = service.fetch_table(USER, "nb-c", "gw", query, limit=-1)
        assert len(full.table) == 5000 and not full.truncated
        capped = service.fetch_table(USER, "nb-c", "gw", query, limit=1000)
        assert len(capped.table) == 1000 and capped.truncated and capped.row_limit == 1000
        exact = service.fetch_table(USER, "nb-c", "gw", query, limit=5000)
        assert len(exact.table) == 5000 and not exact.truncated
        leftovers = service.run(USER, "nb-c", "gw", "len(globals().get('__prophecy_tables', {}))")
        assert leftovers.result.text == "0", "chunks are freed on the driver once fetched"
    finally:
        service.shutdown()


def test_sql_errors_come_back_as_errors(service):
    result = service.fetch_table(USER, "nb-e", "gw", sql_source("select * from missing_table"), limit=10)
    assert not result.ok and "missing_table" in result.error_message


def test_status_and_logs(service):
    service.run(USER, "nb-s", "gw", "print('hello')")
    status = service.status(USER, "nb-s")
    assert status[0]["fabric"] == "default/gw" and status[0]["state"] == "idle" and status[0]["app_id"]
    assert any("ready" in line for line in service.logs(service.sessions_of(USER, "nb-s")[0]))
    assert service.close(USER, "nb-s") == 1
    assert service.status(USER, "nb-s") == []


def test_a_session_can_start_in_the_background(service):
    service.start_in_background(USER, "nb-bg", "gw")
    deadline = time.monotonic() + 60
    while not (service.sessions_of(USER, "nb-bg") and service.sessions_of(USER, "nb-bg")[0].live):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    started = service.sessions_of(USER, "nb-bg")[0].remote.id
    run = service.run(USER, "nb-bg", "gw", "1 + 1")
    assert run.result.text == "2" and run.session.remote.id == started


def test_polling_rides_out_server_errors(data_dir, gateway):
    """500s and dropped answers while a statement runs delay the result; they do not lose it."""
    proxy = FaultProxy(gateway.url).start()
    service = make_service(data_dir, proxy.url, gateway.token)
    try:
        service.run(USER, "nb-faults", "gw", "1")
        proxy.add("GET", r"/statements/\d+", "status_before", status=500, times=3)
        proxy.add("GET", r"/statements/\d+", "drop_before", times=2)
        run = service.run(USER, "nb-faults", "gw", "import time\ntime.sleep(1.5)\n'done'")
        assert run.state == RunState.FINISHED and run.result.text == "'done'"
        assert len([e for e in proxy.log if e.action == "status_before"]) == 3
        assert len(proxy.requests_to("POST", r"/statements(\?|$)")) == 2, "each statement was sent once"
    finally:
        service.shutdown()
        proxy.stop()


def test_sessions_are_limited_per_user(data_dir, gateway):
    service = make_service(data_dir, gateway.url, gateway.token, max_sessions_per_user=2)
    try:
        service.run(USER, "nb-1", "gw", "1")
        service.run(USER, "nb-2", "gw", "1")
        with pytest.raises(LimitReached, match="2 live sessions"):
            service.run(USER, "nb-3", "gw", "1")
        service.close(USER, "nb-1")
        assert service.run(USER, "nb-3", "gw", "1 + 1").result.text == "2"
    finally:
        service.shutdown()


def test_table_runs_report_their_statement_and_can_be_cancelled(service):
    slow = "spark.sql(\"select id, reflect('java.lang.Thread', 'sleep', 1000L) as s from range(0, 8, 1, 8)\")"
    run = service.submit_table(USER, "nb-tc", "gw", slow, limit=-1)
    deadline = time.monotonic() + 60
    while run.current is None or run.current.statement_id is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert run.describe()["kind"] == "table" and run.state == RunState.RUNNING
    service.cancel(run)
    assert run.wait(20) and run.state == RunState.CANCELLED and run.payload is None
    assert service.find_run(USER, run.id) is run
