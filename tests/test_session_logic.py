"""The session service's own logic on an in-memory engine (``tests/fakes/engine.py``): polling,
cancel, a lost session reopened once, upkeep and recovery after a restart, in milliseconds. The
same behaviours against real PySpark behind the gateway are in ``test_session_service.py``."""

from __future__ import annotations

import gc
import threading
import time
from functools import partial

import pytest

from prophecy_jupyter.errors import EngineError, LimitReached, NotFound, SessionGone, Unavailable
from prophecy_jupyter.results.model import RunState
from prophecy_jupyter.services.fabrics import Fabric
from prophecy_jupyter.services.sessions import SessionService
from prophecy_jupyter.services.sessions.latch import OPEN
from prophecy_jupyter.services.sessions.records import StoreSessionRecords
from prophecy_jupyter.services.settings import ServiceSettings
from prophecy_jupyter.store.database import Database, sqlite_url
from prophecy_jupyter.store.models import RunRow, SessionRow
from tests import waiting
from tests.fakes.engine import FakeEngine, FakeEngines, FakeFabrics, remote_fabric

wait_until = partial(waiting.wait_until, timeout=5.0, every=0.002)

USER, NOTEBOOK = "ada", "etl.ipynb"
FABRIC = remote_fabric()


@pytest.fixture
def engine():
    return FakeEngine()


def build(engine: FakeEngine, records=None, **settings) -> SessionService:
    settings = {"tick_interval": 0.01, "health_interval": 0.01, **settings}
    return SessionService(FakeFabrics(FABRIC), FakeEngines(engine), ServiceSettings(**settings), records)


@pytest.fixture
def service(engine):
    service = build(engine)
    yield service
    service.shutdown()


def test_a_statement_is_polled_until_done_with_its_progress(service, engine):
    engine.script("slow()", polls=5, text="42")
    seen = []
    run = service.submit(USER, NOTEBOOK, FABRIC.ref, "slow()")
    while not run.wait(0.0005):
        seen.append(run.progress)
    assert (run.state, run.result.text, run.polls) == (RunState.FINISHED, "42", 6)
    assert engine.submitted("slow()") == 1
    assert any(0 < p < 1 for p in seen if p is not None)


def test_a_failing_statement_fails_with_the_remote_error(service, engine):
    engine.script("boom()", state=RunState.FAILED, text="division by zero")
    run = service.run(USER, NOTEBOOK, FABRIC.ref, "boom()")
    assert run.state == RunState.FAILED
    assert (run.result.error_name, run.result.error_message) == ("Boom", "division by zero")


def test_polls_that_fail_are_retried_and_the_statement_is_not_sent_again(service, engine):
    engine.script("work()", polls=2)
    engine.fail("poll", EngineError("connection reset"), EngineError("503"))
    run = service.run(USER, NOTEBOOK, FABRIC.ref, "work()")
    assert run.state == RunState.FINISHED
    assert engine.submitted("work()") == 1
    assert engine.count("poll") == 5


def test_contact_lost_longer_than_the_budget_fails_the_run_without_sending_it_again(engine):
    service = build(engine, poll_failure_budget=0.05)
    try:
        engine.script("work()", polls=1)
        engine.fail("poll", *[EngineError("unreachable")] * 50)
        run = service.run(USER, NOTEBOOK, FABRIC.ref, "work()")
        assert run.state == RunState.FAILED
        assert "Lost contact with fabric 'default/fake'" in run.result.error_message
        assert engine.submitted("work()") == 1
    finally:
        service.shutdown()


def test_cancel_goes_to_the_fabric_and_ends_the_run_cancelled(service, engine):
    engine.script("forever()", polls=10**6)
    run = service.submit(USER, NOTEBOOK, FABRIC.ref, "forever()")
    wait_until(lambda: run.statement_id is not None)
    service.cancel(run)
    assert run.wait(5)
    assert run.state == RunState.CANCELLED
    assert engine.count("cancel") == 1


def test_a_session_lost_before_it_took_the_code_is_reopened_once_and_the_code_sent_once_there(
    service, engine
):
    first = service.session(USER, NOTEBOOK, FABRIC.ref).remote.id
    engine.end(first)
    run = service.run(USER, NOTEBOOK, FABRIC.ref, "x = 1")
    assert run.state == RunState.FINISHED
    assert [call[1] for call in engine.calls if call[0] == "submit"] == [first, "s2"]
    assert any("runs in a new one" in note for note in run.notes)


def test_a_session_lost_again_after_reopening_fails_the_run(service, engine):
    service.session(USER, NOTEBOOK, FABRIC.ref)
    engine.fail("submit", SessionGone("evicted"), SessionGone("evicted again"))
    run = service.run(USER, NOTEBOOK, FABRIC.ref, "x = 1")
    assert run.state == RunState.FAILED
    assert "evicted again" in run.result.error_message
    assert engine.count("open_session") == 2


def test_a_session_that_ends_under_a_running_statement_fails_it_with_the_reason(service, engine):
    engine.script("long()", polls=10**6)
    run = service.submit(USER, NOTEBOOK, FABRIC.ref, "long()")
    wait_until(lambda: run.statement_id is not None)
    engine.sessions[run.session.remote.id] = "ended"
    assert run.wait(5)
    assert run.state == RunState.FAILED
    assert "is gone" in run.result.error_message or "ended" in run.result.error_message
    assert not run.session.live


def test_long_statements_keep_the_session_alive(engine):
    service = build(engine, keepalive_interval=0.02)
    try:
        engine.script("long()", polls=10**6)
        run = service.submit(USER, NOTEBOOK, FABRIC.ref, "long()")
        wait_until(lambda: engine.count("keepalive") >= 2)
        service.cancel(run)
        run.wait(5)
    finally:
        service.shutdown()


def test_an_idle_session_is_closed_and_the_next_cell_says_it_had_ended(engine):
    service = build(engine, idle_session_timeout=0.05)
    try:
        managed = service.session(USER, NOTEBOOK, FABRIC.ref)
        wait_until(lambda: engine.count("close_session") == 1)
        assert managed.ended_reason == "closed after sitting idle"
        notes = []
        run = service.run(USER, NOTEBOOK, FABRIC.ref, "x", notify=notes.append)
        assert run.state == RunState.FINISHED
        assert notes == [
            "The session on fabric 'default/fake' had ended (closed after sitting idle); starting a new "
            "one. Variables from earlier cells are gone."
        ]
    finally:
        service.shutdown()


def test_a_user_has_at_most_the_sessions_allowed(engine):
    service = build(engine, max_sessions_per_user=2)
    try:
        service.session(USER, "a.ipynb", FABRIC.ref)
        service.session(USER, "b.ipynb", FABRIC.ref)
        with pytest.raises(LimitReached, match="2 live sessions"):
            service.session(USER, "c.ipynb", FABRIC.ref)
        service.session("grace", "c.ipynb", FABRIC.ref)
        service.close(USER, "a.ipynb")
        service.session(USER, "c.ipynb", FABRIC.ref)
    finally:
        service.shutdown()


def test_a_session_that_starts_slowly_is_waited_for(engine):
    engine.start_polls = 4
    service = build(engine)
    try:
        managed = service.session(USER, NOTEBOOK, FABRIC.ref)
        assert managed.live
        assert engine.count("session") >= 4
    finally:
        service.shutdown()


def test_each_run_is_recorded_once_with_its_end_whether_it_ends_soon_or_later(engine, tmp_path):
    db = Database.open(sqlite_url(tmp_path))
    service = build(engine, StoreSessionRecords(db))

    def stored(run_id: str) -> RunRow | None:
        with db.transaction() as session:
            return session.get(RunRow, run_id)

    engine.script("boom()", state=RunState.FAILED, text="division by zero")
    engine.script("forever()", polls=10**9)
    try:
        quick = [service.run(USER, NOTEBOOK, FABRIC.ref, f"x = {i}") for i in range(30)]
        failed = service.run(USER, NOTEBOOK, FABRIC.ref, "boom()")
        long = service.submit(USER, NOTEBOOK, FABRIC.ref, "forever()")
        wait_until(lambda: stored(long.id) is not None, timeout=10)
        assert stored(long.id).finished_at is None, "a run still going is stored as started"
        service.cancel(long)
        assert long.wait(5)
    finally:
        service.shutdown()
    with db.transaction() as session:
        rows = {row.id: row for row in session.query(RunRow)}
        [session_row] = session.query(SessionRow).all()
    assert set(rows) == {run.id for run in [*quick, failed, long]}
    assert all(rows[run.id].state == RunState.FINISHED and rows[run.id].error is None for run in quick)
    assert rows[failed.id].state == RunState.FAILED and "division by zero" in rows[failed.id].error
    assert rows[long.id].state == RunState.CANCELLED, "the end of a run stored earlier is written too"
    assert all(row.submitted_at <= row.finished_at for row in rows.values())
    assert session_row.last_used == max(row.finished_at for row in rows.values())


def test_after_a_restart_live_sessions_are_taken_back_and_ended_ones_reported(engine, tmp_path):
    def records():
        return StoreSessionRecords(Database.open(sqlite_url(tmp_path)))

    before = build(engine, records())
    kept = before.session(USER, "kept.ipynb", FABRIC.ref)
    lost = before.session(USER, "lost.ipynb", FABRIC.ref)
    before.shutdown(close_sessions=False)
    engine.end(lost.remote.id)

    after = build(engine, records())
    try:
        report = {item["notebook"]: item["outcome"] for item in after.rehydrate()}
        assert report == {"kept.ipynb": "reattached", "lost.ipynb": "ended"}
        assert after.session(USER, "kept.ipynb", FABRIC.ref).remote.id == kept.remote.id
        [ended] = after.status(USER, "lost.ipynb")
        assert ended["fabric"] == FABRIC.ref
        reason = "while the server was down; the fabric reports it ended"
        assert ended["ended_reason"] == reason
        notes = []
        after.start_in_background(USER, "lost.ipynb", FABRIC.ref)
        wait_until(lambda: after.managed(USER, "lost.ipynb", FABRIC.ref).live)
        after.run(USER, "lost.ipynb", FABRIC.ref, "x", notify=notes.append)
        assert notes == [
            f"The session on fabric '{FABRIC.ref}' had ended ({reason}); starting a new one. Variables from "
            "earlier cells are gone."
        ], "said at the first cell, though the session was started in the background"
    finally:
        after.shutdown()


def test_a_session_that_cannot_be_checked_at_a_restart_stays_recorded_for_the_next(engine, tmp_path):
    def service():
        return build(engine, StoreSessionRecords(Database.open(sqlite_url(tmp_path))))

    before = service()
    kept = before.session(USER, NOTEBOOK, FABRIC.ref)
    before.shutdown(close_sessions=False)

    engine.fail("session", Unavailable("The hub service does not answer."))
    unchecked = service()
    [report] = unchecked.rehydrate()
    assert report["outcome"] == "unchecked" and unchecked.status(USER, NOTEBOOK) == []
    unchecked.shutdown(close_sessions=False)

    after = service()
    try:
        [report] = after.rehydrate()
        assert report["outcome"] == "reattached"
        assert after.session(USER, NOTEBOOK, FABRIC.ref).remote.id == kept.remote.id
    finally:
        after.shutdown()


def test_a_notebook_that_started_afresh_before_the_check_is_not_told_later_of_the_old_session(
    engine, tmp_path
):
    def service():
        return build(engine, StoreSessionRecords(Database.open(sqlite_url(tmp_path))))

    before = service()
    old = before.session(USER, NOTEBOOK, FABRIC.ref)
    before.shutdown(close_sessions=False)
    engine.end(old.remote.id)

    after = service()
    try:
        after.run(USER, NOTEBOOK, FABRIC.ref, "x = 1")
        [report] = after.rehydrate()
        assert report["outcome"] == "ended" and report["id"] == old.id
        assert engine.count("close_session") == 0, "the session the notebook had just started is kept"
        after.close(USER, NOTEBOOK)
        notes = []
        after.run(USER, NOTEBOOK, FABRIC.ref, "x = 2", notify=notes.append)
        assert notes == [], "a notice for a session that the user already replaced"
    finally:
        after.shutdown()


def test_sessions_that_end_with_the_server_are_reported_ended_at_its_next_start(engine, tmp_path):
    local = Fabric(id="local", team=None, name="local", kind="local")

    def service():
        records = StoreSessionRecords(Database.open(sqlite_url(tmp_path)))
        return SessionService(FakeFabrics(local), FakeEngines(engine), ServiceSettings(), records)

    before = service()
    before.run(USER, NOTEBOOK, "local", "x = 1")
    before.shutdown(close_sessions=False)
    assert engine.count("close_session") == 1

    after = service()
    try:
        [report] = after.rehydrate()
        assert report["outcome"] == "ended"
        assert engine.count("session") == 0, "the fabric is not asked about a session that cannot be alive"
        notes = []
        after.run(USER, NOTEBOOK, "local", "x", notify=notes.append)
        assert notes == [
            "The session on fabric 'local' had ended (with the server: sessions on this fabric end when the "
            "server stops); starting a new one. Variables from earlier cells are gone."
        ]
    finally:
        after.shutdown()


def test_a_stale_fabric_is_looked_up_by_one_caller_while_the_others_keep_the_last_answer(monkeypatch):
    from prophecy_jupyter.services.sessions import directory

    recent: directory.Recent[str] = directory.Recent()
    assert recent.get(("ada", "fake"), lambda: "first") == "first"
    monkeypatch.setattr(directory, "FABRIC_CACHE_SECONDS", 0.0)
    looking, release, calls = threading.Event(), threading.Event(), []

    def slow_look_up() -> str:
        calls.append(1)
        looking.set()
        release.wait(5)
        return "second"

    looker = threading.Thread(target=lambda: recent.get(("ada", "fake"), slow_look_up))
    looker.start()
    assert looking.wait(5)
    others = [recent.get(("ada", "fake"), slow_look_up) for _ in range(20)]
    release.set()
    looker.join(5)
    assert others == ["first"] * 20 and len(calls) == 1, "one query while it is under way"
    assert recent.get(("ada", "fake"), lambda: "third") == "third", "stale again: looked up"

    def gone() -> str:
        raise LookupError("removed from the team")

    with pytest.raises(LookupError):
        recent.get(("ada", "fake"), gone)
    with pytest.raises(LookupError):
        recent.get(("ada", "fake"), gone)


def test_finished_runs_are_forgotten_once_kept_long_enough_and_running_ones_never(engine):
    service = build(engine, finished_runs_kept=1.0)
    engine.script("forever()", polls=10**9)

    def forgotten(run) -> bool:
        try:
            return service.find_run(USER, run.id) is not run
        except NotFound:
            return True

    try:
        old = service.run(USER, NOTEBOOK, FABRIC.ref, "x = 1")
        going = service.submit(USER, NOTEBOOK, FABRIC.ref, "forever()")
        assert service.runs_held() == 2
        time.sleep(1.2)
        recent = service.run(USER, NOTEBOOK, FABRIC.ref, "x = 2")
        wait_until(lambda: forgotten(old))
        assert not forgotten(recent) and not forgotten(going)
        service.cancel(going)
        assert going.wait(5)
        wait_until(lambda: forgotten(recent) and forgotten(going))
        assert service.runs_held() == 0
    finally:
        service.shutdown()


def test_every_waiter_of_a_run_wakes_when_it_ends_and_a_wait_with_a_timeout_returns_before(service, engine):
    engine.script("forever()", polls=10**9)
    run = service.submit(USER, NOTEBOOK, FABRIC.ref, "forever()")
    woken: list[bool] = []
    waiters = [threading.Thread(target=lambda: woken.append(run.wait())) for _ in range(5)]
    for waiter in waiters:
        waiter.start()
    began = time.monotonic()
    assert run.wait(0.2) is False and time.monotonic() - began >= 0.2
    assert not run.done and woken == []
    called = []
    run.add_done_callback(lambda: called.append(run.state))
    service.cancel(run)
    for waiter in waiters:
        waiter.join(5)
    assert woken == [True] * 5 and run.wait(0) and run.done
    assert called == [RunState.CANCELLED]
    run.add_done_callback(lambda: called.append("late"))
    assert called == [RunState.CANCELLED, "late"], "a callback added after the end runs at once"


def test_a_run_whose_end_a_client_was_told_is_forgotten_soon_and_others_are_kept(engine):
    service = build(engine, told_runs_kept=0.3)

    def findable(run) -> bool:
        try:
            return service.find_run(USER, run.id) is run
        except NotFound:
            return False

    try:
        told = service.run(USER, NOTEBOOK, FABRIC.ref, "x = 1")
        untold = service.run(USER, NOTEBOOK, FABRIC.ref, "x = 2")
        service.told(told)
        assert findable(told), "a retried request finds it a little while"
        wait_until(lambda: not findable(told))
        time.sleep(0.5)
        assert findable(untold), "a run nobody was told about stays (finished_runs_kept)"
    finally:
        service.shutdown()


def test_a_finished_run_keeps_only_itself_and_its_result_for_the_garbage_collector(service, engine):
    """A server holds thousands of finished runs, and every collection walks each container they
    keep or that was made for them since the one before: a finished run keeps none beyond its
    result (its session, the shared open latch, the lock all runs share and the result's kind are
    not its own), and the service keeps when it finished and when a client was told as plain
    values, not as a pair per run."""
    engine.script("boom()", state=RunState.FAILED, text="division by zero")
    gc.disable()  # so that no collection lets go of a pair before it is looked for
    try:
        for code in ("x = 1", "boom()"):
            run = service.run(USER, NOTEBOOK, FABRIC.ref, code)
            service.told(run)
            pairs = [o for o in gc.get_referrers(run.id) if isinstance(o, tuple)]
            assert pairs == [], f"{code}: the service made {pairs} for the run"
            run.add_done_callback(lambda: None)
            run.note("a note")
            assert run.done and run.notes == ("a note",)
            gc.collect()  # which lets go of tuples of plain values (the notes)
            shared = {id(run.session), id(OPEN), id(run.result.kind), id(type(run)), id(type(run.result))}
            kept = [o for o in [*gc.get_referents(run), *gc.get_referents(run.result)] if id(o) not in shared]
            assert sorted(type(o).__name__ for o in kept if gc.is_tracked(o)) == ["Result"], code
    finally:
        gc.enable()
