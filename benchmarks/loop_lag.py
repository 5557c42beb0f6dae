"""A Jupyter server extension for the benchmarks: how late the server's event loop wakes up.

A task sleeps 5 ms at a time and records how much later than asked it woke; any callback that
holds the loop (a blocking call in a handler, say) shows up as lag. The durations of Python's
garbage collections, which stop every thread, are recorded too, and each wake-up later than
``LATE_MS`` with its time (to set beside ``benchmarks.stall_probe``). ``GET /bench/loop-lag``
returns all three since the previous call (the first call starts the watch).
"""

from __future__ import annotations

import asyncio
import gc
import json
import time

from jupyter_server.base.handlers import APIHandler
from tornado import web

INTERVAL = 0.005
LATE_MS = 20.0


class LoopWatch:
    """Records each wake-up's delay beyond ``INTERVAL``, in milliseconds."""

    def __init__(self) -> None:
        self.lags_ms: list[float] = []
        self.gc_ms: list[tuple[int, float]] = []
        self.late: list[tuple[float, float]] = []
        self.task: asyncio.Task | None = None
        self._gc_started = 0.0

    def on_gc(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            self.gc_ms.append((info["generation"], (time.perf_counter() - self._gc_started) * 1000))

    async def watch(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(INTERVAL)
            lag_ms = (time.perf_counter() - before - INTERVAL) * 1000
            self.lags_ms.append(lag_ms)
            if lag_ms > LATE_MS:
                self.late.append((time.time(), lag_ms))

    def take(self) -> dict[str, list]:
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self.watch())
            gc.callbacks.append(self.on_gc)
        taken = {"lags_ms": self.lags_ms, "gc_ms": self.gc_ms, "late": self.late}
        self.lags_ms, self.gc_ms, self.late = [], [], []
        return taken


class LoopLagHandler(APIHandler):
    @web.authenticated
    def get(self) -> None:
        self.finish(json.dumps(self.settings["bench_loop_watch"].take()))


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "benchmarks.loop_lag"}]


def _load_jupyter_server_extension(serverapp) -> None:
    serverapp.web_app.settings["bench_loop_watch"] = LoopWatch()
    serverapp.web_app.add_handlers(".*$", [(r"/bench/loop-lag", LoopLagHandler)])
