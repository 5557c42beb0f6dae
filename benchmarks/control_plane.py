"""The control plane at scale: 50 to 500 simulated notebooks through a real Jupyter server with
our extension, against an engine that answers at once, so that every millisecond measured is the
server's own.

The server is started the way the tests start one (``tests/servers/jupyter.py``) with two
benchmark-only extensions in its config file: ``benchmarks.loop_lag`` (how late its event loop
wakes) and ``benchmarks.control_plane_server`` (the ``bench-instant`` fabric kind, whose engine is
in memory, kernel tokens minted by the server's own registry for one kernel it started, and the
process's memory, CPU per thread and profiles). A fabric of that kind is created through the REST
API. Each simulated notebook is a task of one asyncio process (aiohttp) that speaks the API as
``client/rest.py`` does, with a kernel token in ``X-Prophecy-Kernel``: ``POST /sessions`` once,
then per statement ``POST /sessions/{id}/runs?wait=0.5`` (answered once the run is over or the
half second is up) and ``GET /runs/{id}?wait=10`` until it is done.

Measured, in this order, on one server:

1. RSS per idle session: sessions opened (no statement) up to each load level; the server's RSS
   after a garbage collection at each step, and the slope of a straight line through them;
2. per load level (50, 100, 250, 500 notebooks), two phases of ``seconds`` each after a 2 s
   ramp: ``back-to-back`` (each statement as soon as the previous one answered: the server's
   capacity) and ``paced`` (0.5-1.5 s before each statement, as people run cells); statements/s,
   latency added by the server (the notebook's wall time minus the engine's, which is 0), the
   event loop's lag, the server's RSS, its CPU time per statement and per thread;
3. at the largest level, back to back, a profile: cProfile on the event loop's thread and a
   sampler of every other thread's stack.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import psutil

from benchmarks.common import LOGS, MB, REPO, percentile
from benchmarks.stall_probe import StallProbe, late_wakeups
from prophecy_jupyter.client.backend import FIRST_WAIT

PHASES: dict[str, tuple[float, float]] = {"back-to-back": (0.0, 0.0), "paced": (0.5, 1.5)}
"""Phase name → the range of the pause before each statement, in seconds."""
RAMP_S = 2.0
"""Seconds of load before the measured window (connections made, pools grown)."""
DONE = {"finished", "failed", "cancelled"}
SUBMIT_WAIT = f"{FIRST_WAIT}"
"""What ``client/rest.py`` asks a submit's answer to wait for the run."""
LONG_POLL = "10.000"
"""What ``client/rest.py`` asks a run's long poll to hold (``RemoteRun.wait`` without a timeout)."""
OPENING_AT_ONCE = 50
WARM_UP_STATEMENTS = 50
FABRIC = {"name": "instant", "kind": "bench-instant", "settings": {}}
STATEMENT_MS = 20.0
"""How long a statement runs on the second fabric of the largest level, measured paced: long
enough that each answer waits for the statement's end, as a real statement's does."""
TIMED_FABRIC = {"name": "timed", "kind": "bench-instant", "settings": {"statement_ms": STATEMENT_MS}}

THROUGHPUT_GOAL = 1000.0
ADDED_P99_GOAL_MS = 20.0
LOOP_LAG_GOAL_MS = 20.0
IDLE_SESSION_GOAL_KB = 200.0


def _stats(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    ordered = sorted(values)
    return {
        "n": len(ordered),
        "median": percentile(ordered, 0.5),
        "p90": percentile(ordered, 0.9),
        "p99": percentile(ordered, 0.99),
        "max": ordered[-1],
        "mean": sum(ordered) / len(ordered),
    }


def _line(points: Sequence[tuple[float, float]]) -> tuple[float, float, float]:
    """Least-squares slope, intercept and R² of y over x."""
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    sxx = sum((x - mean_x) ** 2 for x, _ in points)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in points)
    slope = sxy / sxx if sxx else 0.0
    intercept = mean_y - slope * mean_x
    total = sum((y - mean_y) ** 2 for _, y in points)
    residual = sum((y - intercept - slope * x) ** 2 for x, y in points)
    return slope, intercept, 1 - residual / total if total else 1.0


class Api:
    """The server's REST API from the load generator: one aiohttp session, no connection limit."""

    def __init__(self, http: Any, server_url: str, server_token: str):
        from prophecy_jupyter.client.link import API_PREFIX

        self.http = http
        self.url = server_url
        self.api = server_url + API_PREFIX
        self.admin = {"Authorization": f"token {server_token}"}

    async def call(self, method: str, url: str, headers: dict[str, str], **kwargs: Any) -> Any:
        async with self.http.request(method, url, headers=headers, **kwargs) as answer:
            body = await answer.read()
            if answer.status >= 400:
                raise RuntimeError(f"{method} {url}: {answer.status} {body[:300]!r}")
            return json.loads(body) if body else None

    async def bench(self, method: str, path: str, **kwargs: Any) -> Any:
        return await self.call(method, self.url + path, self.admin, **kwargs)


class Notebook:
    """A simulated kernel: its token, its notebook's path, its session."""

    def __init__(self, api: Api, token: str, path: str, fabric: str):
        from prophecy_jupyter.client.link import KERNEL_HEADER

        self.api = api
        self.headers = {KERNEL_HEADER: token}
        self.path = path
        self.fabric = fabric
        self.session: str | None = None
        self.count = 0

    async def open(self) -> None:
        body = {"notebook": self.path, "fabric": self.fabric, "wait": True}
        self.session = (await self.api.call("POST", f"{self.api.api}/sessions", self.headers, json=body))[
            "id"
        ]

    async def statement(self) -> tuple[float, float, int]:
        """One statement to its end: wall seconds, the engine's own seconds, and the requests it
        took (the run's long poll is skipped when ``POST .../runs`` answers that it finished, as
        ``client/rest.py``'s ``RemoteRun.wait`` does; the submit's answer waits up to
        ``SUBMIT_WAIT`` for that)."""
        code = f"value_{self.count} = {self.count} * 2"
        self.count += 1
        api, headers = self.api, self.headers
        started = time.perf_counter()
        requests = 1
        body = {"code": code, "language": "pyspark"}
        path = f"{api.api}/sessions/{self.session}/runs"
        run = await api.call("POST", path, headers, json=body, params={"wait": SUBMIT_WAIT})
        while run["state"] not in DONE:
            run = await api.call("GET", f"{api.api}/runs/{run['id']}", headers, params={"wait": LONG_POLL})
            requests += 1
        wall = time.perf_counter() - started
        if run["state"] != "finished":
            raise RuntimeError(f"run {run['state']}: {run.get('result')}")
        return wall, (run.get("remote_ms") or 0) / 1000, requests


class ServerWatch:
    """The server process as seen from outside (RSS by psutil) and from inside (the extensions)."""

    def __init__(self, api: Api, pid: int):
        self.api = api
        self.process = psutil.Process(pid)
        self.me = psutil.Process()

    async def inside(self, collect: bool = False) -> dict[str, Any]:
        return await self.api.bench("GET", "/bench/process", params={"gc": "1" if collect else "0"})

    async def lags(self) -> dict[str, list]:
        return await self.api.bench("GET", "/bench/loop-lag")

    def client_cpu_s(self) -> float:
        times = self.me.cpu_times()
        return times.user + times.system


async def _phase(
    notebooks: list[Notebook],
    watch: ServerWatch,
    seconds: float,
    pauses: tuple[float, float],
    seed: int,
    ramp: float = RAMP_S,
    observe: bool = True,
    probe: StallProbe | None = None,
) -> dict[str, Any]:
    """Every notebook runs statements until the window closes; what the window saw (without
    ``observe``, nothing is asked of the server's benchmark extensions: a profile runs), and which
    of the loop's late wake-ups the stall ``probe`` beside the server had too."""
    begin = time.perf_counter()
    window = (begin + ramp, begin + ramp + seconds)
    samples: list[tuple[float, float, float, int]] = []
    failures: list[str] = []
    marks: dict[str, Any] = {}
    rss: list[int] = []

    async def notebook(n: int, nb: Notebook) -> None:
        rng = random.Random(seed * 100_003 + n)
        low, high = pauses
        while time.perf_counter() < window[1]:
            if high:
                await asyncio.sleep(rng.uniform(low, high))
                if time.perf_counter() >= window[1]:
                    return
            try:
                wall, engine_s, requests = await nb.statement()
            except Exception as exc:
                failures.append(f"notebook {n}: {type(exc).__name__}: {exc}"[:300])
                await asyncio.sleep(0.1)
                continue
            samples.append((time.perf_counter(), wall, engine_s, requests))

    async def snapshot(opening: bool) -> tuple[dict[str, Any], dict[str, list]]:
        """The server's process numbers and its loop's lags since the last call (which restart).
        Reading the process's numbers (a file per thread in /proc) holds the server's loop for
        20-40 ms: before the lags restart as the window opens, after they are taken as it closes,
        so that no window counts the benchmark's own stall."""
        if not observe:
            return {}, {"lags_ms": [], "gc_ms": [], "late": []}
        if opening:
            inside = await watch.inside()
            return inside, await watch.lags()
        lags = await watch.lags()
        return await watch.inside(), lags

    async def side() -> None:
        await asyncio.sleep(max(0.0, window[0] - time.perf_counter()))
        marks["client_cpu_0"] = watch.client_cpu_s()
        marks["t0"], marks["wall_0"] = time.perf_counter(), time.time()
        marks["inside_0"], _ = await snapshot(opening=True)
        while time.perf_counter() < window[1]:
            rss.append(watch.process.memory_info().rss)
            await asyncio.sleep(min(0.5, max(0.0, window[1] - time.perf_counter())))
        marks["client_cpu_1"] = watch.client_cpu_s()
        marks["t1"], marks["wall_1"] = time.perf_counter(), time.time()
        marks["inside_1"], marks["lags"] = await snapshot(opening=False)
        rss.append(watch.process.memory_info().rss)

    await asyncio.gather(side(), *(notebook(n, nb) for n, nb in enumerate(notebooks)))
    inside_0, inside_1 = marks["inside_0"], marks["inside_1"]
    inside = [sample for sample in samples if window[0] <= sample[0] <= window[1]]
    measured = [(wall, engine) for _, wall, engine, _ in inside]
    timeline: list[list[float]] = [[0, 0.0] for _ in range(int(window[1] - window[0]) + 1)]
    for done, wall, _, _ in inside:
        second = timeline[int(done - window[0])]
        second[0] += 1
        second[1] = max(second[1], round(wall * 1000, 1))
    completed = len(measured)
    elapsed = marks["t1"] - marks["t0"]
    server_cpu = inside_1["cpu_s"] - inside_0["cpu_s"] if observe else None
    threads = {
        group: (row["cpu_s"] - inside_0["threads"].get(group, {"cpu_s": 0.0})["cpu_s"]) / elapsed
        for group, row in inside_1.get("threads", {}).items()
    }
    lags = marks["lags"]
    by_generation = {g: [ms for generation, ms in lags["gc_ms"] if generation == g] for g in (0, 1, 2)}
    stalls = probe.stalls() if probe is not None else []
    return {
        "notebooks": len(notebooks),
        "pauses_s": pauses,
        "seconds": elapsed,
        "completed": completed,
        "statements_total": len(samples),
        "requests_per_statement": sum(r for *_, r in inside) / len(inside) if inside else None,
        "per_second": timeline,
        "failures": len(failures),
        "failure_messages": failures[:5],
        "statements_per_s": completed / elapsed if elapsed else 0.0,
        "added_ms": _stats([(wall - engine) * 1000 for wall, engine in measured]),
        "loop_lag_ms": _stats(lags["lags_ms"]),
        "late_wakeups": late_wakeups(lags["late"], stalls),
        "probe_stalls_ms": [ms for at, ms in stalls if marks["wall_0"] <= at <= marks["wall_1"]],
        "gc_ms": {
            "all": _stats([ms for _, ms in lags["gc_ms"]]),
            "full": _stats(by_generation[2]),
            "by_generation": {str(g): _stats(pauses) for g, pauses in by_generation.items()},
        },
        "server_rss_mb": {"end": rss[-1] / MB, "peak": max(rss) / MB},
        "server_cpu_cores": server_cpu / elapsed if server_cpu is not None else None,
        "server_cpu_ms_per_statement": server_cpu * 1000 / completed if server_cpu and completed else None,
        "server_threads_cores": dict(sorted(threads.items(), key=lambda item: -item[1])),
        "client_cpu_cores": (marks["client_cpu_1"] - marks["client_cpu_0"]) / elapsed,
        "runs_held": inside_1.get("runs_held"),
    }


async def _open_all(notebooks: Sequence[Notebook]) -> float:
    """Open the notebooks' sessions, ``OPENING_AT_ONCE`` at a time; seconds it took."""
    gate = asyncio.Semaphore(OPENING_AT_ONCE)
    began = time.perf_counter()

    async def one(nb: Notebook) -> None:
        async with gate:
            await nb.open()

    await asyncio.gather(*(one(nb) for nb in notebooks))
    return time.perf_counter() - began


async def _idle_memory(
    notebooks: list[Notebook], levels: Sequence[int], watch: ServerWatch
) -> dict[str, Any]:
    """Open sessions up to each level (no statement run) and read the RSS after a collection."""
    await asyncio.sleep(1.0)
    baseline = (await watch.inside(collect=True))["rss"]
    steps, opened, previous = [], 0, baseline
    for level in levels:
        took = await _open_all(notebooks[opened:level])
        await asyncio.sleep(1.0)  # the records of the new sessions are written
        rss = (await watch.inside(collect=True))["rss"]
        steps.append(
            {
                "sessions": level,
                "open_s": took,
                "rss_mb": rss / MB,
                "delta_mb": (rss - baseline) / MB,
                "kb_per_session": (rss - baseline) / 1024 / level,
                "marginal_kb_per_session": (rss - previous) / 1024 / (level - opened),
            }
        )
        opened, previous = level, rss
    slope, intercept, r2 = _line(
        [(0, baseline / 1024)] + [(s["sessions"], s["rss_mb"] * 1024) for s in steps]
    )
    return {
        "baseline_rss_mb": baseline / MB,
        "steps": steps,
        "kb_per_session": slope,
        "intercept_mb": intercept / 1024,
        "linear_r2": r2,
    }


async def _level(
    server: Any,
    kernel_id: str,
    level: int,
    seconds: float,
    idle_steps: Sequence[int] = (),
    profile_seconds: float | None = None,
    probe: StallProbe | None = None,
) -> dict[str, Any]:
    """One load level on a fresh server: its sessions opened (in ``idle_steps``, measuring the
    memory of idle sessions), then each phase (beside the stall ``probe``); with
    ``profile_seconds``, statements that take their long poll, and the profile."""
    import aiohttp

    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        api = Api(http, server.url, server.token)
        watch = ServerWatch(api, server.process.pid)
        body = {"kernel_id": kernel_id, "count": level + 1}
        tokens = (await api.bench("POST", "/bench/kernel-tokens", json=body))["tokens"]
        fabric = await api.call("POST", f"{api.api}/teams/default/fabrics", api.admin, json=FABRIC)
        root = server.root / "load"
        notebooks = [
            Notebook(api, tokens[n], str(root / f"notebook-{n}.ipynb"), fabric["ref"]) for n in range(level)
        ]
        await watch.lags()  # starts the watch of the event loop
        warm = Notebook(api, tokens[-1], str(root / "warm-up.ipynb"), fabric["ref"])
        await warm.open()
        for _ in range(WARM_UP_STATEMENTS):
            await warm.statement()
        result: dict[str, Any] = {}
        if idle_steps:
            result["idle_sessions"] = await _idle_memory(notebooks, idle_steps, watch)
        else:
            result["open_s"] = await _open_all(notebooks)

        async def phase(
            pauses: tuple[float, float], group: list[Notebook] = notebooks, **how: Any
        ) -> dict[str, Any]:
            return await _phase(group, watch, seconds, pauses, seed=level, probe=probe, **how)

        result["phases"] = {name: await phase(pauses) for name, pauses in PHASES.items()}
        if profile_seconds is not None:
            timed = await api.call("POST", f"{api.api}/teams/default/fabrics", api.admin, json=TIMED_FABRIC)
            group = [Notebook(api, tokens[n], nb.path, timed["ref"]) for n, nb in enumerate(notebooks)]
            await _open_all(group)
            result["timed_engine"] = await phase(PHASES["paced"], group)
            result["timed_engine"]["statement_ms"] = STATEMENT_MS
            await api.bench("POST", "/bench/profile", params={"action": "start"})
            profiled = await _phase(
                notebooks, watch, profile_seconds, PHASES["back-to-back"], seed=2, ramp=0.5, observe=False
            )
            profile = await api.bench("POST", "/bench/profile", params={"action": "stop"})
            profile["statements"] = profiled["statements_total"]
            profile["statements_per_s"] = profiled["statements_per_s"]
            profile["runs_held"] = (await watch.inside())["runs_held"]
            result["profile"] = profile
        return result


@contextlib.contextmanager
def _server(
    scratch: Path, name: str, extensions: Sequence[str], options: Sequence[str]
) -> Iterator[tuple[Any, str]]:
    """A fresh Jupyter server with the benchmark's extensions and one kernel it started; its log
    is kept as ``results/logs/control-plane-<name>.log``."""
    import requests

    from prophecy_jupyter.vault.keys import new_key
    from tests.servers.jupyter import start_jupyter

    base = scratch / f"jupyter-control-plane-{name}"
    (base / "config").mkdir(parents=True, exist_ok=True)
    loaded = dict.fromkeys(["benchmarks.loop_lag", "benchmarks.control_plane_server", *extensions], True)
    (base / "config" / "jupyter_server_config.json").write_text(
        json.dumps({"ServerApp": {"jpserver_extensions": loaded}})
    )
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    server = start_jupyter(
        base,
        scratch / f"data-control-plane-{name}",
        new_key(),
        "--ProphecyJupyter.max_sessions_per_user=0",
        "--ProphecyJupyter.local_warm_start=never",  # no local session here: its JVM would take CPU
        *options,
        env={"PYTHONPATH": path},
    )
    try:
        kernel = server.call("POST", "/kernels", {"name": "python3"}, api="/api")["id"]
        yield server, kernel
        try:
            server.call("DELETE", f"/kernels/{kernel}", api="/api")
        except (AssertionError, requests.RequestException) as exc:
            print(f"the benchmark kernel was not shut down: {exc}")
    finally:
        server.stop()
        LOGS.mkdir(parents=True, exist_ok=True)
        shutil.copy(server.log, LOGS / f"control-plane-{name}.log")


def measure_control_plane(
    scratch: Path,
    levels: Sequence[int],
    seconds: float,
    profile_seconds: float,
    extensions: Sequence[str] = (),
    options: Sequence[str] = (),
) -> dict[str, Any]:
    """Each level on a fresh server (so that no level inherits another's finished runs); the
    largest also measures idle sessions, statements that take their long poll, and the profile.
    ``extensions`` and ``options``: more server extensions and options (what-ifs: a module or a
    setting that changes something in the server, to see what it would gain)."""
    levels = sorted(levels)
    began = time.perf_counter()
    result: dict[str, Any] = {"levels": {}}
    for level in levels:
        largest = level == levels[-1]
        with (
            _server(scratch, str(level), extensions, options) as (server, kernel),
            StallProbe(scratch / f"control-plane-stalls-{level}.txt") as probe,
        ):
            measured = asyncio.run(
                _level(
                    server,
                    kernel,
                    level,
                    seconds,
                    idle_steps=levels if largest else (),
                    profile_seconds=profile_seconds if largest else None,
                    probe=probe,
                )
            )
        result["levels"][str(level)] = measured.pop("phases")
        measured.pop("open_s", None)
        result.update(measured)  # the largest level's idle sessions, session-each-cell and profile
    return {
        "levels_notebooks": list(levels),
        "seconds_per_phase": seconds,
        "ramp_s": RAMP_S,
        "pauses_s": PHASES,
        "long_poll_s": float(LONG_POLL),
        "warm_up_statements": WARM_UP_STATEMENTS,
        "profile_seconds": profile_seconds,
        "extensions": list(extensions),
        "options": list(options),
        "server_logs": str(LOGS / "control-plane-<notebooks>.log"),
        "duration_s": time.perf_counter() - began,
        **result,
    }


# -- report ---------------------------------------------------------------------------------------


def _largest(result: dict[str, Any]) -> dict[str, Any]:
    return result["levels"][str(max(result["levels_notebooks"]))]


def goals(result: dict[str, Any]) -> list[tuple[str, float, float, str, bool]]:
    """(measure, value, limit, unit, at least) for the Goals table."""
    top = _largest(result)
    n = max(result["levels_notebooks"])
    back, paced = top["back-to-back"], top["paced"]
    idle = result["idle_sessions"]
    return [
        (
            f"{n} notebooks, back-to-back: thousands of statements/s",
            back["statements_per_s"] / 1000,
            THROUGHPUT_GOAL / 1000,
            "k/s",
            True,
        ),
        (f"{n} notebooks, back-to-back: p99 added", back["added_ms"]["p99"], ADDED_P99_GOAL_MS, "ms", False),
        (f"{n} notebooks, paced: p99 added", paced["added_ms"]["p99"], ADDED_P99_GOAL_MS, "ms", False),
        (
            f"{n} notebooks, back-to-back: longest loop lag",
            back["loop_lag_ms"]["max"],
            LOOP_LAG_GOAL_MS,
            "ms",
            False,
        ),
        (
            f"{n} notebooks, paced: longest loop lag",
            paced["loop_lag_ms"]["max"],
            LOOP_LAG_GOAL_MS,
            "ms",
            False,
        ),
        ("RSS per idle notebook session (slope)", idle["kb_per_session"], IDLE_SESSION_GOAL_KB, "KB", False),
        (
            "RSS per idle session, steepest step (growth no worse than linear)",
            max(step["marginal_kb_per_session"] for step in idle["steps"]),
            IDLE_SESSION_GOAL_KB,
            "KB",
            False,
        ),
    ]


def _ms(stats: dict[str, float]) -> str:
    return f"{stats['median']:.1f} / {stats['p99']:.1f} / {stats['max']:.1f}" if stats.get("n") else "-"


def _late(r: dict[str, Any]) -> str:
    """The loop's wake-ups over 20 ms late: how many, how many the stall probe had at the same
    moment, and the longest of each kind."""
    late = r.get("late_wakeups")
    if late is None:
        return "-"
    shared = [w["ms"] for w in late if w["probe_too"]]
    own = [w["ms"] for w in late if not w["probe_too"]]
    if not late:
        return "0"
    return f"{len(late)} ({len(shared)} shared, {max(shared, default=0):.0f}; own {max(own, default=0):.0f})"


def _row(label: str, phase: str, r: dict[str, Any]) -> list[str]:
    per = r["server_cpu_ms_per_statement"]
    collections = r["gc_ms"]["all"]
    by_generation = r["gc_ms"].get("by_generation", {})
    return [
        label,
        phase,
        f"{r['completed']:,}" + (f" ({r['failures']} failed)" if r["failures"] else ""),
        f"{r['statements_per_s']:,.0f}",
        f"{r['requests_per_statement']:.2f}" if r.get("requests_per_statement") else "-",
        _ms(r["added_ms"]),
        f"{r['loop_lag_ms']['p99']:.1f} / {r['loop_lag_ms']['max']:.1f}",
        _late(r),
        " / ".join(str(by_generation.get(g, {}).get("n", 0)) for g in "012")
        + (f", {collections['max']:.0f}" if collections.get("n") else ""),
        f"{per:.2f}" if per is not None else "-",
        f"{r['server_cpu_cores']:.2f}",
        f"{r['server_rss_mb']['end']:.0f}",
        f"{r['runs_held']:,}",
        f"{r['client_cpu_cores']:.2f}",
    ]


THREADS = {
    "event loop (MainThread)": "event loop",
    "prophecy-run-records": "run records writer",
    "prophecy-poll": "scheduler's pool",
    "prophecy-api": "API pool",
}


def _per_thread(label: str, r: dict[str, Any]) -> list[str]:
    rate = r["statements_per_s"] or 1e-9
    cores = r["server_threads_cores"]
    known = [cores.get(group, 0.0) * 1000 / rate for group in THREADS]
    rest = sum(v for group, v in cores.items() if group not in THREADS) * 1000 / rate
    return [label, *(f"{ms:.2f}" for ms in known), f"{rest:.2f}", f"{sum(known) + rest:.2f}"]


def table(result: dict[str, Any]) -> str:
    """The Markdown tables of benchmark 9."""
    header = [
        "notebooks",
        "phase",
        "statements",
        "statements/s",
        "requests / statement",
        "added ms median / p99 / max",
        "loop lag ms p99 / max",
        "late wake-ups (shared, longest ms)",
        "GCs of generation 0 / 1 / 2, longest ms",
        "server CPU ms / statement",
        "server CPU cores",
        "server RSS MB",
        "runs held",
        "load generator CPU cores",
    ]
    rows = [
        _row(level, phase, r) for level, phases in result["levels"].items() for phase, r in phases.items()
    ]
    timed = result["timed_engine"]
    statement = f"paced, statements of {timed['statement_ms']:.0f} ms on the engine"
    rows.append(_row(str(timed["notebooks"]), statement, timed))
    lines = [_table(header, rows)]
    levels = result["levels_notebooks"]
    low, high = result["levels"][str(levels[0])], result["levels"][str(levels[-1])]
    growth = []
    for phase in PHASES:
        a, b = low[phase], high[phase]

        def times(key: str, inner: str | None = None, a: dict = a, b: dict = b) -> float:
            first, last = (a[key], b[key]) if inner is None else (a[key][inner], b[key][inner])
            return (last or 0.0) / max(first or 0.0, 1e-9)

        growth.append(
            f"{phase}: statements/s x{times('statements_per_s'):.2f}, "
            f"p50 added x{times('added_ms', 'median'):.1f}, p99 added x{times('added_ms', 'p99'):.1f}, "
            f"loop lag p99 x{times('loop_lag_ms', 'p99'):.1f}, "
            f"CPU per statement x{times('server_cpu_ms_per_statement'):.2f}"
        )
    lines.append(
        f"{levels[0]} to {levels[-1]} simulated notebooks, each level on a fresh Jupyter server, one "
        "asyncio load generator speaking the REST API with kernel tokens, an engine that answers at "
        f"once; {result['seconds_per_phase']:.0f} s measured per phase after a {result['ramp_s']:.0f} s "
        "ramp. Added = the notebook's wall time from `POST .../runs` to the finished run, minus the "
        "engine's time (0, or the statement's time on the last row). Requests / statement: 1 when "
        "`POST .../runs` already answers that the run finished (then, as `client/rest.py`, no long "
        "poll is made), 2 with the long poll. Late wake-ups: the loop's wake-ups over 20 ms late, "
        "how many of them a plain Python process sleeping the same way beside the server "
        "(benchmarks/stall_probe.py) had at the same moment (the machine's, not the server's), and "
        "the longest shared and the longest the server's own. "
        "GCs: Python's collections of its youngest, middle and oldest (full) generation in the "
        "window, and the longest of them. Runs held: the runs "
        "the server holds at the window's end (a finished one until 10 s after a client was told how it "
        f"ended); its RSS includes them. From {levels[0]} to {levels[-1]} notebooks, "
        + "; ".join(growth)
        + "."
    )
    header = ["notebooks (back-to-back unless said)", *THREADS.values(), "other threads", "all"]
    rows = [_per_thread(level, phases["back-to-back"]) for level, phases in result["levels"].items()]
    rows.append(
        _per_thread(f"{timed['notebooks']}, paced, statements of {timed['statement_ms']:.0f} ms", timed)
    )
    lines.append("Server CPU ms per statement, by thread (from `/proc/self/task`, no profiler):")
    lines.append(_table(header, rows))
    idle = result["idle_sessions"]
    steps = [
        [
            f"{s['sessions']}",
            f"{s['rss_mb']:.1f}",
            f"{s['delta_mb']:.1f}",
            f"{s['kb_per_session']:.0f}",
            f"{s['marginal_kb_per_session']:.0f}",
            f"{s['open_s']:.2f}",
        ]
        for s in idle["steps"]
    ]
    header = [
        "idle sessions",
        "server RSS MB",
        "over baseline MB",
        "KB per session",
        "KB per session of this step",
        "opened in s",
    ]
    lines.append(_table(header, steps))
    lines.append(
        f"Baseline {idle['baseline_rss_mb']:.1f} MB; a straight line through the steps: "
        f"**{idle['kb_per_session']:.0f} KB per idle session** (R² {idle['linear_r2']:.3f}). RSS after a "
        "garbage collection in the server, each step's sessions opened 50 at a time."
    )
    lines.append(profile_summary(result["profile"]))
    return "\n\n".join(lines)


def _sampled_rows(sampled: dict[str, Any], top: int) -> list[list[str]]:
    """A thread group's functions by share of its busy samples (on the stack, and innermost),
    leaving out the frames every sample has (thread start, the event loop's own loop)."""
    own = {r["function"]: r["share"] for r in sampled["self"]}
    rows = [
        [f"`{r['function']}`", f"{r['share']:.0%}", f"{own.get(r['function'], 0.0):.0%}"]
        for r in sampled["total"]
        if r["share"] < 0.97
    ]
    return rows[:top]


def profile_summary(profile: dict[str, Any], top: int = 12) -> str:
    """Where the server's time went in the profile window."""
    seconds = profile["seconds"]
    cpu = [
        [group, f"{s:.2f}", f"{s / seconds:.2f}"] for group, s in profile["thread_cpu_s"].items() if s > 0.05
    ]
    parts = [
        f"Profile at {max(1, round(profile['statements_per_s']))} statements/s, back to back "
        f"({profile['statements']:,} statements in {seconds:.0f} s, slowed by the profilers; "
        f"{profile['runs_held']:,} finished runs held at the end): CPU by thread",
        _table(["thread", "CPU s", "cores"], cpu),
    ]
    for group, sampled in profile["sampled"]["groups"].items():
        if sampled["busy_samples"] < 20:
            continue
        parts.append(
            f"{group}: functions by share of the thread's {sampled['busy_samples']} busy samples "
            "(every 5 ms; a thread waiting for the GIL is sampled where it waits)"
        )
        parts.append(_table(["function", "on the stack", "innermost"], _sampled_rows(sampled, top)))
    loop = profile["event_loop_cprofile"]
    rows = [
        [f"`{r['function']}`", f"{r['calls']:,}", f"{r['tottime']:.2f}", f"{r['cumtime']:.2f}"]
        for r in loop["by_own_time"][:top]
    ]
    parts.append(
        "Event loop, cProfile, by own time (a C call's own time includes waiting for the GIL after it):"
    )
    parts.append(_table(["function", "calls", "own s", "total s"], rows))
    return "\n\n".join(parts)


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def main() -> None:
    """``python -m benchmarks.control_plane --levels 10,20 --seconds 3``: a run of this alone."""
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--levels", default="50,100,250,500")
    parser.add_argument("--seconds", type=float, default=25.0)
    parser.add_argument("--profile-seconds", type=float, default=12.0)
    parser.add_argument("--extension", action="append", default=[], help="another server extension (what-if)")
    parser.add_argument(
        "--server-option",
        action="append",
        default=[],
        help="another option of the server, e.g. --server-option=--ProphecyJupyter.finished_runs_kept=30",
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    levels = [int(level) for level in args.levels.split(",")]
    with tempfile.TemporaryDirectory(prefix="prophecy-control-plane-") as scratch:
        result = measure_control_plane(
            Path(scratch), levels, args.seconds, args.profile_seconds, args.extension, args.server_option
        )
    if args.out:
        args.out.write_text(json.dumps(result, indent=2, default=str))
    print(table(result))


if __name__ == "__main__":
    main()
