"""A Jupyter server extension for the control-plane benchmark (``benchmarks.control_plane``).

Loaded next to the product's own extension with ``ServerApp.jpserver_extensions`` in the
benchmark server's config file, never by a user's server. It adds, from outside the product:

- a fabric kind, ``bench-instant``, registered in the kind registry the way a kind module is
  (``kinds.REGISTRY``), whose engine answers at once from memory: a session opens idle, a statement
  is queued on submit and finished on its first check (the server long-polls it, as it does our
  gateway). A fabric of this kind is then created through the REST API like any other, and cells
  reach it through the real handlers, session service, scheduler, records and store;
- ``POST /bench/kernel-tokens``: tokens minted by the server's own kernel-token registry
  (``KernelTokens.mint``) for a kernel this server started, as the server's owner, so that many
  simulated kernels authenticate exactly as kernels do without starting a process each;
- ``GET /bench/process``: this process's RSS, CPU time and CPU time per thread (``?gc=1`` collects
  garbage first, for memory that is really held);
- ``POST /bench/profile?action=start|stop``: cProfile on the event loop's thread, plus a sampler
  of every other thread's Python stack, for a short window.
"""

from __future__ import annotations

import collections
import cProfile
import gc
import io
import itertools
import json
import os
import pstats
import re
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from jupyter_server.base.handlers import APIHandler
from tornado import web

from prophecy_jupyter.engines.base import RemoteSession, SessionSpec, SessionState, StatementStatus
from prophecy_jupyter.errors import SessionGone
from prophecy_jupyter.kinds import REGISTRY
from prophecy_jupyter.kinds.base import EngineContext, FabricKind, KindSettings
from prophecy_jupyter.results.model import Result, RunState
from prophecy_jupyter.results.transport import SPARK_TABLES

KIND = "bench-instant"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


# -- the fabric kind --------------------------------------------------------------------------------


class InstantSettings(KindSettings):
    """Nothing to connect to."""

    statement_ms: float = 0.0
    """How long a statement runs (0: it is finished at its first check)."""

    def endpoint(self) -> str:
        return "memory:bench-instant"


class InstantEngine:
    """The engine protocol answered from memory at once; it keeps only the ids of open sessions
    (and, when statements take ``statement_ms``, when each running one ends), so it adds no memory
    per statement and costs the server next to nothing. A check of a running statement waits for
    its end up to ``wait`` seconds, as a server that long-polls does."""

    name = KIND
    poll_policy = None
    tables = SPARK_TABLES
    supports_long_poll = True

    def __init__(self, statement_ms: float = 0.0) -> None:
        self._sessions: set[str] = set()
        self._ids = itertools.count(1)
        self._statement_s = statement_ms / 1000
        self._running: dict[str, tuple[float, float]] = {}
        """Statement id → when it started and when it ends (epoch seconds)."""

    def _known(self, session_id: str) -> None:
        if session_id not in self._sessions:
            raise SessionGone(f"Session {session_id} is gone.")

    def prepare(self, notify: Callable[[str], None], timeout: float) -> None:
        pass

    def open_session(self, spec: SessionSpec) -> RemoteSession:
        session_id = f"m{next(self._ids)}"
        self._sessions.add(session_id)
        return RemoteSession(session_id, SessionState.IDLE, "idle")

    def session(self, session_id: str, wait: float = 0.0) -> RemoteSession:
        self._known(session_id)
        return RemoteSession(session_id, SessionState.IDLE, "idle")

    def submit(self, session_id: str, code: str, kind: str, run_id: str) -> StatementStatus:
        self._known(session_id)
        statement_id = f"{session_id}-{next(self._ids)}"
        if self._statement_s:
            now = time.time()
            self._running[statement_id] = (now, now + self._statement_s)
        return StatementStatus(statement_id, RunState.QUEUED)

    def poll(self, session_id: str, statement_id: str, wait: float = 0.0) -> StatementStatus:
        now = time.time()
        started, ends = self._running.get(statement_id, (now, now))
        if ends > now:
            time.sleep(min(ends - now, wait))
            if ends > time.time():
                return StatementStatus(statement_id, RunState.RUNNING, 0.5)
        self._running.pop(statement_id, None)
        done_ms = int(ends * 1000)
        result = Result.of_text("")
        return StatementStatus(
            statement_id, RunState.FINISHED, 1.0, result, None, int(started * 1000), done_ms
        )

    def cancel(self, session_id: str, statement_id: str) -> None:
        pass

    def complete(self, session_id: str, code: str, cursor: int, kind: str) -> list[str]:
        return []

    def logs(self, session_id: str, size: int = 100) -> list[str]:
        return []

    def keepalive(self, session_id: str) -> None:
        pass

    def close_session(self, session_id: str) -> None:
        self._sessions.discard(session_id)

    def close(self) -> None:
        pass


def _check(settings: InstantSettings, secret: str | None, steps: list[str], ref: str) -> str:
    steps.append("in memory: nothing to reach")
    return "An in-memory engine: statements finish at once."


def _engine(settings: InstantSettings, context: EngineContext) -> InstantEngine:
    return InstantEngine(settings.statement_ms)


INSTANT = FabricKind(
    name=KIND,
    title="In-memory engine (benchmark only)",
    settings=InstantSettings,
    check=_check,
    engine=_engine,
)


# -- this process: memory, CPU per thread, profiles ---------------------------------------------------


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE


def _thread_group(name: str) -> str:
    """``prophecy-poll_12`` → ``prophecy-poll``; the main thread is the event loop's."""
    if name == "MainThread":
        return "event loop (MainThread)"
    return re.sub(r"[_-]\d+$", "", name)


def thread_cpu() -> dict[str, dict[str, float]]:
    """CPU seconds of each thread group of this process (user + system), with how many threads."""
    names = {thread.native_id: _thread_group(thread.name) for thread in threading.enumerate()}
    groups: dict[str, dict[str, float]] = {}
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/stat") as stat:
                raw = stat.read()
            with open(f"/proc/self/task/{task}/comm") as comm:
                comm_name = comm.read().strip()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        group = names.get(int(task)) or "native: " + re.sub(r"[_-]?\d+$", "", comm_name)
        entry = groups.setdefault(group, {"cpu_s": 0.0, "threads": 0})
        entry["cpu_s"] += cpu
        entry["threads"] += 1
    return groups


IDLE_LEAVES = {
    ("selectors.py", "select"),
    ("threading.py", "wait"),
    ("thread.py", "_worker"),
    ("queue.py", "get"),
    ("records.py", "_write_runs"),
    ("loop_lag.py", "watch"),
    ("socket.py", "accept"),
}
"""A thread whose innermost Python frame is one of these waits (epoll, a condition, an empty
queue): the sampler counts it as idle."""


class StackSampler:
    """Every ``interval`` s, the Python stack of each busy thread: counts per function, per thread
    group, of samples where it is the innermost frame (self) and anywhere on the stack (total)."""

    def __init__(self, interval: float = 0.005):
        self.interval = interval
        self.samples = 0
        self.busy: collections.Counter[str] = collections.Counter()
        self.self_counts: collections.Counter[tuple[str, str]] = collections.Counter()
        self.total_counts: collections.Counter[tuple[str, str]] = collections.Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        me = threading.get_ident()
        names = {}
        while not self._stop.wait(self.interval):
            self.samples += 1
            frames = sys._current_frames()
            if len(names) != len(frames):
                names = {t.ident: _thread_group(t.name) for t in threading.enumerate()}
            for ident, frame in frames.items():
                if ident == me:
                    continue
                code = frame.f_code
                if (os.path.basename(code.co_filename), code.co_name) in IDLE_LEAVES:
                    continue
                group = names.get(ident, "other")
                self.busy[group] += 1
                seen = set()
                leaf = True
                while frame is not None:
                    code = frame.f_code
                    where = f"{_short(code.co_filename)}:{code.co_name}"
                    if leaf:
                        self.self_counts[(group, where)] += 1
                        leaf = False
                    if where not in seen:
                        seen.add(where)
                        self.total_counts[(group, where)] += 1
                    frame = frame.f_back
            del frames

    def report(self, top: int = 40) -> dict[str, Any]:
        groups: dict[str, Any] = {}
        for group, busy in self.busy.most_common():
            own = [(w, n) for (g, w), n in self.self_counts.items() if g == group]
            total = [(w, n) for (g, w), n in self.total_counts.items() if g == group]
            groups[group] = {
                "busy_samples": busy,
                "self": [
                    {"function": w, "share": n / busy} for w, n in sorted(own, key=lambda x: -x[1])[:top]
                ],
                "total": [
                    {"function": w, "share": n / busy} for w, n in sorted(total, key=lambda x: -x[1])[:top]
                ],
            }
        return {"samples": self.samples, "interval_s": self.interval, "groups": groups}


def _short(path: str) -> str:
    for marker in ("site-packages/", "/lib/python3.", "/work/main/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            return path.split("/", 1)[1] if marker.startswith("/lib/python3.") else path
    return path


def _profile_rows(profile: cProfile.Profile, top: int) -> dict[str, Any]:
    stats = pstats.Stats(profile, stream=io.StringIO())
    rows = []
    for (path, line, name), (_, calls, tottime, cumtime, _) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append(
            {
                "function": f"{_short(path)}:{line}({name})",
                "calls": calls,
                "tottime": tottime,
                "cumtime": cumtime,
            }
        )
    by_own = sorted(rows, key=lambda r: -r["tottime"])[:top]
    by_total = sorted(rows, key=lambda r: -r["cumtime"])[:top]
    return {"total_s": stats.total_tt, "by_own_time": by_own, "by_total_time": by_total}  # type: ignore[attr-defined]


class Profiling:
    """One profile window at a time."""

    def __init__(self) -> None:
        self.profile: cProfile.Profile | None = None
        self.sampler: StackSampler | None = None
        self.started = 0.0
        self.cpu_before: dict[str, dict[str, float]] = {}

    def start(self) -> None:
        self.profile = cProfile.Profile()
        self.sampler = StackSampler()
        self.cpu_before = thread_cpu()
        self.started = time.perf_counter()
        self.sampler.start()
        self.profile.enable()  # on the event loop's thread: the handler runs there

    def stop(self, top: int = 40) -> dict[str, Any]:
        assert self.profile is not None and self.sampler is not None
        self.profile.disable()
        self.sampler.stop()
        seconds = time.perf_counter() - self.started
        after = thread_cpu()
        cpu = {
            group: after[group]["cpu_s"] - self.cpu_before.get(group, {"cpu_s": 0.0})["cpu_s"]
            for group in after
        }
        report = {
            "seconds": seconds,
            "thread_cpu_s": dict(sorted(cpu.items(), key=lambda item: -item[1])),
            "event_loop_cprofile": _profile_rows(self.profile, top),
            "sampled": self.sampler.report(),
        }
        self.profile = self.sampler = None
        return report


# -- handlers ---------------------------------------------------------------------------------------


class KernelTokensHandler(APIHandler):
    @web.authenticated
    def post(self) -> None:
        body = json.loads(self.request.body or b"{}")
        kernel_id, count = body["kernel_id"], int(body["count"])
        if kernel_id not in self.kernel_manager:
            raise web.HTTPError(404, f"no kernel {kernel_id} in this server")
        tokens = self.settings["prophecy_kernel_tokens"]
        owner = self.settings["prophecy_owner"]
        self.finish(json.dumps({"tokens": [tokens.mint(owner, kernel_id) for _ in range(count)]}))


class ProcessHandler(APIHandler):
    @web.authenticated
    def get(self) -> None:
        if self.get_query_argument("gc", "0") == "1":
            gc.collect()
        times = os.times()
        self.finish(
            json.dumps(
                {
                    "rss": _rss(),
                    "cpu_s": times.user + times.system,
                    "threads": thread_cpu(),
                    "gc_counts": gc.get_count(),
                    "frozen": gc.get_freeze_count(),
                    "runs_held": self.settings["prophecy_services"].sessions.runs_held(),
                }
            )
        )


class ProfileHandler(APIHandler):
    @web.authenticated
    def post(self) -> None:
        profiling: Profiling = self.settings["bench_profiling"]
        if self.get_query_argument("action") == "start":
            profiling.start()
            self.finish(json.dumps({"started": True}))
        else:
            self.finish(json.dumps(profiling.stop()))


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "benchmarks.control_plane_server"}]


def _load_jupyter_server_extension(serverapp) -> None:
    REGISTRY.setdefault(KIND, INSTANT)
    serverapp.web_app.settings["bench_profiling"] = Profiling()
    serverapp.web_app.add_handlers(
        ".*$",
        [
            (r"/bench/kernel-tokens", KernelTokensHandler),
            (r"/bench/process", ProcessHandler),
            (r"/bench/profile", ProfileHandler),
        ],
    )
