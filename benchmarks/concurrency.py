"""Many notebooks at once: ours through the Jupyter server extension on the local fabric, and the
same load from sparkmagic clients (each notebook's own Livy client) on a gateway of their own.

Each notebook opens its session and runs one warm-up statement; then, all together, every
notebook runs its short statements in three phases:

- ``back-to-back``: each statement right after the previous one answered, so the machine is
  saturated and the latency is mostly waiting for a CPU;
- ``paced``: a pause of 0.5 to 1.5 s before each statement, as a person running cells would;
- ``paced beside 4 busy``: paced again, while 4 more notebooks each keep a CPU busy in their
  interpreter (a Python loop), as notebooks crunching data in pandas do: the CPUs are full of work
  that is not the server's.

A statement's *added* latency is its wall time seen by the notebook minus the time the gateway
says it ran; for ours, the latency *added by the server* is that wall time minus the server's own
round trip to the gateway (from sending the statement to the answer that said it was done). While
ours runs, a benchmark extension in the server (``benchmarks.loop_lag``) records how late the
server's event loop wakes.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from benchmarks.common import REPO, percentile, summary
from benchmarks.stall_probe import StallProbe, late_wakeups

FINISHED = "finished"
DONE = {"finished", "failed", "cancelled"}
BUSY_NOTEBOOKS = 4
BUSY_PHASE = f"paced beside {BUSY_NOTEBOOKS} busy"
PHASES: dict[str, tuple[float, float]] = {
    "back-to-back": (0.0, 0.0),
    "paced": (0.5, 1.5),
    BUSY_PHASE: (0.5, 1.5),
}
"""Phase name → the range of the pause before each statement, in seconds."""

Sample = tuple[float, "float | Callable[[], float]", "float | None"]
"""Wall seconds, seconds the gateway says it ran (or how to ask it, later), server round trip."""
Statement = Callable[[str], Sample]


def _stats_ms(values: list[float]) -> dict[str, float]:
    return {**summary(values), "p99": percentile(values, 0.99)} if values else {"n": 0}


class _Load:
    """``notebooks`` workers that warm up, then run every phase together; samples per phase."""

    def __init__(self, notebooks: int, statements: int, timeout: float):
        self.notebooks, self.statements, self.timeout = notebooks, statements, timeout
        self.barrier = threading.Barrier(notebooks + 1)
        self.lock = threading.Lock()
        self.samples: dict[str, list[Sample]] = {p: [] for p in PHASES}
        self.failures: list[str] = []

    def run(
        self, open_notebook: Callable[[int], Statement], between_phases: Callable[[str | None], None]
    ) -> dict:
        """Run the workers; ``between_phases(name)`` is called as each phase starts (None: all over)."""
        began = time.perf_counter()
        threads = [
            threading.Thread(target=self._worker, args=(open_notebook, n), daemon=True)
            for n in range(self.notebooks)
        ]
        for thread in threads:
            thread.start()
        durations: dict[str, float] = {}
        ready_s = None
        for phase in PHASES:
            self.barrier.wait(self.timeout)
            ready_s = ready_s if ready_s is not None else time.perf_counter() - began
            between_phases(phase)
            durations[phase] = time.perf_counter()
        self.barrier.wait(self.timeout)
        last = list(PHASES)[-1]
        ends = {
            phase: durations[following] for phase, following in zip(PHASES, list(PHASES)[1:], strict=False)
        }
        ends[last] = time.perf_counter()
        between_phases(None)
        for thread in threads:
            thread.join(30)
        return {
            "sessions_ready_s": ready_s,
            "phases": {p: self._report(p, ends[p] - durations[p]) for p in PHASES},
        }

    def _worker(self, open_notebook: Callable[[int], Statement], n: int) -> None:
        try:
            run = open_notebook(n)
            run("warm_up = 1")
            pauses = random.Random(n)
            for phase, (low, high) in PHASES.items():
                self.barrier.wait(self.timeout)
                for i in range(self.statements):
                    if high:
                        time.sleep(pauses.uniform(low, high))
                    sample = run(f"value_{i} = {i} * 2")
                    with self.lock:
                        self.samples[phase].append(sample)
            self.barrier.wait(self.timeout)
        except Exception as exc:
            with self.lock:
                self.failures.append(f"notebook {n}: {type(exc).__name__}: {exc}")
            self.barrier.abort()

    def _report(self, phase: str, measured_s: float) -> dict[str, Any]:
        samples = [(wall, ran() if callable(ran) else ran, trip) for wall, ran, trip in self.samples[phase]]
        report = {
            "completed": len(samples),
            "failures": self.notebooks * self.statements - len(samples),
            "measured_s": measured_s,
            "statements_per_s": len(samples) / measured_s if measured_s else 0.0,
            "added_ms": _stats_ms([(wall - ran) * 1000 for wall, ran, _ in samples]),
            "wall_ms": _stats_ms([wall * 1000 for wall, _, _ in samples]),
        }
        trips = [(wall - trip) * 1000 for wall, _, trip in samples if trip is not None]
        if trips:
            report["added_by_server_ms"] = _stats_ms(trips)
        return report

    def header(self) -> dict[str, Any]:
        return {
            "notebooks": self.notebooks,
            "statements_each": self.statements,
            "pauses_s": PHASES,
            "failure_messages": self.failures[:10],
        }


class Spinners:
    """Statements that each keep a CPU busy in their own notebook's interpreter from the start of
    ``BUSY_PHASE`` until it ends (or ``timeout`` s), sent by ``send(session, code)``."""

    def __init__(self, scratch: Path, sessions: list[Any], send: Callable[[Any, str], None], timeout: float):
        self.flag = scratch / "busy-phase-over"
        self.flag.unlink(missing_ok=True)
        self.sessions, self.send, self.timeout = sessions, send, timeout

    def between_phases(self, phase: str | None) -> None:
        if phase == BUSY_PHASE:
            code = (
                f"import os, time\n_until = time.time() + {self.timeout}\n"
                f"while not os.path.exists({str(self.flag)!r}) and time.time() < _until:\n    pass"
            )
            for session in self.sessions:
                self.send(session, code)
        elif phase is None:
            self.flag.touch()


def measure_ours(scratch: Path, notebooks: int, statements: int, timeout: float) -> dict[str, Any]:
    """Notebooks as kernels reach the server: REST with the server's token, long-polling each run."""
    from prophecy_jupyter.client.backend import FIRST_WAIT
    from prophecy_jupyter.client.link import API_PREFIX
    from prophecy_jupyter.vault.keys import new_key
    from tests.servers.jupyter import start_jupyter

    base = scratch / "jupyter-concurrency"
    (base / "config").mkdir(parents=True, exist_ok=True)
    (base / "config" / "jupyter_server_config.json").write_text(
        json.dumps({"ServerApp": {"jpserver_extensions": {"benchmarks.loop_lag": True}}})
    )
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    os.environ["PROPHECY_JUPYTER_LOCAL_MAX_SESSIONS"] = str(notebooks + BUSY_NOTEBOOKS + 2)
    os.environ["PROPHECY_JUPYTER_LOCAL_DRIVER_MEMORY"] = "4g"
    server = start_jupyter(
        base,
        scratch / "data-concurrency",
        new_key(),
        f"--ProphecyJupyter.max_sessions_per_user={notebooks + BUSY_NOTEBOOKS + 2}",
    )
    api = server.url + API_PREFIX

    def open_session(http: requests.Session, name: str) -> str:
        body = {"notebook": f"load/{name}.ipynb", "fabric": "local", "wait": True}
        answer = http.post(f"{api}/sessions", json=body, timeout=timeout)
        answer.raise_for_status()
        return answer.json()["id"]

    def open_notebook(n: int) -> Statement:
        http = requests.Session()
        http.headers["Authorization"] = f"token {server.token}"
        session = open_session(http, f"notebook-{n}")

        def run(code: str) -> Sample:
            started = time.perf_counter()
            answer = http.post(
                f"{api}/sessions/{session}/runs", json={"code": code}, params={"wait": FIRST_WAIT}, timeout=60
            )
            answer.raise_for_status()
            current = answer.json()
            while current["state"] not in DONE:
                answer = http.get(f"{api}/runs/{current['id']}", params={"wait": "30"}, timeout=60)
                answer.raise_for_status()
                current = answer.json()
            wall = time.perf_counter() - started
            if current["state"] != FINISHED:
                raise RuntimeError(f"run {current['state']}: {current['result']}")
            return wall, current["remote_ms"] / 1000, current["fabric_ms"] / 1000

        return run

    watch = requests.Session()
    watch.headers["Authorization"] = f"token {server.token}"
    lags: dict[str, dict[str, list]] = {}
    windows: dict[str, list[float]] = {}
    current: list[str] = []

    def spin(session: str, code: str) -> None:
        watch.post(f"{api}/sessions/{session}/runs", json={"code": code}, timeout=60).raise_for_status()

    busy: list[str] = []  # opened first, inside the try: the server is stopped if one fails
    spinners = Spinners(scratch, busy, spin, timeout)

    def between_phases(phase: str | None) -> None:
        spinners.between_phases(phase)
        taken = watch.get(f"{server.url}/bench/loop-lag", timeout=30).json()
        if current:
            ended = current.pop()
            lags[ended] = taken
            windows[ended].append(time.time())
        if phase is not None:
            current.append(phase)
            windows[phase] = [time.time()]

    load = _Load(notebooks, statements, timeout)
    try:
        busy += [open_session(watch, f"busy-{n}") for n in range(BUSY_NOTEBOOKS)]
        watch.get(f"{server.url}/bench/loop-lag", timeout=30).raise_for_status()  # starts the watch
        with StallProbe(scratch / "stalls.txt") as probe:
            measured = load.run(open_notebook, between_phases)
            stalls = probe.stalls()
    finally:
        server.stop()
    for phase, report in measured["phases"].items():
        taken = lags.get(phase, {"lags_ms": [], "gc_ms": [], "late": []})
        report["loop_lag_ms"] = _stats_ms(taken["lags_ms"])
        report["late_wakeups"] = late_wakeups(taken["late"], stalls)
        began, ended = windows.get(phase, [0.0, 0.0])
        report["probe_stalls_ms"] = [ms for at, ms in stalls if began <= at <= ended]
        full = [ms for generation, ms in taken["gc_ms"] if generation == 2]
        report["gc_pause_ms"] = {"all": _stats_ms([ms for _, ms in taken["gc_ms"]]), "full": _stats_ms(full)}
    return {**load.header(), **measured, "server_log": str(server.log)}


def measure_sparkmagic(
    sm: Any, scratch: Path, url: str, token: str, notebooks: int, statements: int, timeout: float
) -> dict[str, Any]:
    """Each notebook a sparkmagic Livy session of its own: ``Command(code).execute(session)``."""
    from benchmarks.common import statement_times

    sessions: list[Any] = []
    lock = threading.Lock()
    times: dict[int, list[dict[str, Any]]] = {}
    sent_by_session: dict[int, int] = {}

    def server_s(session_id: int, index: int) -> float:
        """Asked of the gateway after the load, so that asking adds nothing to it (our statements
        are the session's last ones)."""
        if session_id not in times:
            times[session_id] = statement_times(url, token, session_id)
        return times[session_id][index - sent_by_session[session_id]]["server_s"]

    def open_notebook(_n: int) -> Statement:
        session = sm.start_session(url, token)
        with lock:
            sessions.append(session)
        sent = itertools.count()

        def run(code: str) -> Sample:
            started = time.perf_counter()
            ok, output, _ = sm.Command(code).execute(session)
            wall = time.perf_counter() - started
            if not ok:
                raise RuntimeError(f"sparkmagic's statement failed: {output}")
            index = next(sent)
            sent_by_session[session.id] = index + 1
            return wall, functools.partial(server_s, session.id, index), None

        return run

    def spin(session: Any, code: str) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        answer = requests.post(
            f"{url}/sessions/{session.id}/statements", json={"code": code}, headers=headers, timeout=60
        )
        answer.raise_for_status()

    busy: list[Any] = []  # opened inside the try: each one opened is deleted if another fails
    spinners = Spinners(scratch, busy, spin, timeout)
    load = _Load(notebooks, statements, timeout)
    try:
        for _ in range(BUSY_NOTEBOOKS):
            busy.append(sm.start_session(url, token))
            sessions.append(busy[-1])
        measured = load.run(open_notebook, spinners.between_phases)  # reports ask the gateway: before deletes
    finally:
        for session in sessions:
            try:
                session.delete()
            except Exception as exc:  # a failed delete must not hide the measurements
                print(f"sparkmagic session {session.id} was not deleted: {exc}")
    return {**load.header(), **measured}
