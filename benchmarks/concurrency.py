"""Many notebooks at once: ours through the Jupyter server extension on the local fabric, and the
same load from sparkmagic clients (each notebook's own Livy client) on a gateway of their own.

Each notebook opens its session, runs one warm-up statement, waits for all the others, then runs
``statements`` short statements one after another. A statement's *added* latency is its wall time
seen by the notebook minus the time the gateway says it ran; for ours, the latency added by the
server is that wall time minus the server's own round trip to the gateway (from sending the
statement to the answer that said it was done). While ours runs, a small benchmark
extension in the server (``benchmarks.loop_lag``) records how late the server's event loop wakes.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from benchmarks.common import REPO, percentile, summary

FINISHED = "finished"
DONE = {"finished", "failed", "cancelled"}


def _statement(i: int) -> str:
    return f"value_{i} = {i} * 2"


def _stats_ms(values: list[float]) -> dict[str, float]:
    return {**summary(values), "p99": percentile(values, 0.99)} if values else {"n": 0}


class _Load:
    """Runs ``notebooks`` workers at once and collects their samples and failures."""

    def __init__(self, notebooks: int):
        self.start = threading.Barrier(notebooks + 1)
        self.lock = threading.Lock()
        self.samples: list[dict[str, float]] = []
        self.failures: list[str] = []

    def run(self, notebooks: int, worker: Callable[[int], None], timeout: float) -> tuple[float, float]:
        """Start the workers; returns (seconds until all were ready, seconds of the measured part)."""
        began = time.perf_counter()
        threads = [
            threading.Thread(target=self._guarded, args=(worker, n), daemon=True) for n in range(notebooks)
        ]
        for thread in threads:
            thread.start()
        self.start.wait(timeout)
        ready = time.perf_counter()
        for thread in threads:
            thread.join(max(1.0, timeout - (time.perf_counter() - began)))
        return ready - began, time.perf_counter() - ready

    def _guarded(self, worker: Callable[[int], None], n: int) -> None:
        try:
            worker(n)
        except Exception as exc:
            with self.lock:
                self.failures.append(f"notebook {n}: {type(exc).__name__}: {exc}")
            self.start.abort()

    def record(self, wall_s: float, server_s: float, fabric_s: float | None = None) -> None:
        with self.lock:
            self.samples.append({"wall_s": wall_s, "server_s": server_s, "fabric_s": fabric_s})

    def report(self, notebooks: int, statements: int, ready_s: float, measured_s: float) -> dict[str, Any]:
        added = [(s["wall_s"] - s["server_s"]) * 1000 for s in self.samples]
        by_server = [(s["wall_s"] - s["fabric_s"]) * 1000 for s in self.samples if s["fabric_s"] is not None]
        return {
            "notebooks": notebooks,
            "statements_each": statements,
            "completed": len(self.samples),
            "failures": notebooks * statements - len(self.samples),
            "failure_messages": self.failures[:10],
            "sessions_ready_s": ready_s,
            "measured_s": measured_s,
            "statements_per_s": len(self.samples) / measured_s if measured_s else 0.0,
            "added_ms": _stats_ms(added),
            "added_by_server_ms": _stats_ms(by_server),
            "wall_ms": _stats_ms([s["wall_s"] * 1000 for s in self.samples]),
        }


def measure_ours(scratch: Path, notebooks: int, statements: int, timeout: float) -> dict[str, Any]:
    """Notebooks as kernels reach the server: REST with the server's token, long-polling each run."""
    from prophecy_jupyter.server.link import API_PREFIX
    from prophecy_jupyter.vault.keys import new_key
    from tests.servers.jupyter import start_jupyter

    base = scratch / "jupyter-concurrency"
    (base / "config").mkdir(parents=True, exist_ok=True)
    (base / "config" / "jupyter_server_config.json").write_text(
        json.dumps({"ServerApp": {"jpserver_extensions": {"benchmarks.loop_lag": True}}})
    )
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    os.environ["PROPHECY_JUPYTER_LOCAL_MAX_SESSIONS"] = str(notebooks + 2)
    os.environ["PROPHECY_JUPYTER_LOCAL_DRIVER_MEMORY"] = "4g"
    server = start_jupyter(
        base,
        scratch / "data-concurrency",
        new_key(),
        f"--ProphecyJupyter.max_sessions_per_user={notebooks + 2}",
    )
    load = _Load(notebooks)
    api = server.url + API_PREFIX

    def notebook(n: int) -> None:
        http = requests.Session()
        http.headers["Authorization"] = f"token {server.token}"

        def run(code: str) -> dict[str, Any]:
            answer = http.post(f"{api}/sessions/{session['id']}/runs", json={"code": code}, timeout=60)
            answer.raise_for_status()
            current = answer.json()
            while current["state"] not in DONE:
                answer = http.get(f"{api}/runs/{current['id']}", params={"wait": "30"}, timeout=60)
                answer.raise_for_status()
                current = answer.json()
            if current["state"] != FINISHED:
                raise RuntimeError(f"run {current['state']}: {current['result']}")
            return current

        body = {"notebook": f"load/notebook-{n}.ipynb", "fabric": "local", "wait": True}
        answer = http.post(f"{api}/sessions", json=body, timeout=timeout)
        answer.raise_for_status()
        session = answer.json()
        run("warm_up = 1")
        load.start.wait(timeout)
        for i in range(statements):
            started = time.perf_counter()
            finished = run(_statement(i))
            wall = time.perf_counter() - started
            load.record(wall, finished["remote_ms"] / 1000, finished["fabric_ms"] / 1000)

    watch = requests.Session()
    watch.headers["Authorization"] = f"token {server.token}"
    try:
        watch.get(f"{server.url}/bench/loop-lag", timeout=30).raise_for_status()  # starts the watch
        ready_s, measured_s = load.run(notebooks, notebook, timeout)
        lags = watch.get(f"{server.url}/bench/loop-lag", timeout=30).json()["lags_ms"]
    finally:
        server.stop()
    report = load.report(notebooks, statements, ready_s, measured_s)
    report["loop_lag_ms"] = _stats_ms(lags)
    report["server_log"] = str(server.log)
    return report


def measure_sparkmagic(
    sm: Any, url: str, token: str, notebooks: int, statements: int, timeout: float
) -> dict[str, Any]:
    """Each notebook a sparkmagic Livy session of its own: ``Command(code).execute(session)``."""
    from benchmarks.common import statement_times

    load = _Load(notebooks)
    sessions: list[Any] = []

    def notebook(n: int) -> None:
        session = sm.start_session(url, token)
        with load.lock:
            sessions.append(session)
        sm.Command("warm_up = 1").execute(session)
        load.start.wait(timeout)
        walls = []
        for i in range(statements):
            started = time.perf_counter()
            ok, output, _ = sm.Command(_statement(i)).execute(session)
            walls.append(time.perf_counter() - started)
            if not ok:
                raise RuntimeError(f"sparkmagic's statement failed: {output}")
        server_times = statement_times(url, token, session.id)[-statements:]
        for wall, server in zip(walls, server_times, strict=True):
            load.record(wall, server["server_s"])

    try:
        ready_s, measured_s = load.run(notebooks, notebook, timeout)
    finally:
        for session in sessions:
            try:
                session.delete()
            except Exception as exc:  # a failed delete must not hide the measurements
                print(f"sparkmagic session {session.id} was not deleted: {exc}")
    return load.report(notebooks, statements, ready_s, measured_s)
