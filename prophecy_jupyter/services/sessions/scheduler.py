"""One timer thread that hands due work to a small pool, so one scheduler serves every run."""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from prophecy_jupyter.errors import ProphecyError

log = logging.getLogger(__name__)


class Scheduler:
    """Runs callables at given times on a thread pool, plus a periodic housekeeping tick."""

    def __init__(self, workers: int):
        self._heap: list[tuple[float, int, Callable[..., Any], tuple[Any, ...]]] = []
        self._sequence = itertools.count()
        self._wake = threading.Condition()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="prophecy-poll")
        self._tick: Callable[[], None] = lambda: None
        self._tick_interval = 1.0
        self._stopped = False
        self._thread = threading.Thread(target=self._loop, name="prophecy-scheduler", daemon=True)

    def start(self, tick: Callable[[], None], tick_interval: float) -> None:
        """Start the timer thread, which also calls ``tick`` every ``tick_interval`` seconds."""
        self._tick, self._tick_interval = tick, tick_interval
        self._thread.start()

    def call_at(self, when: float, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on the pool at monotonic time ``when``."""
        with self._wake:
            heapq.heappush(self._heap, (when, next(self._sequence), fn, args))
            self._wake.notify()

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> Future:
        """Run ``fn(*args)`` on the pool now."""
        return self._pool.submit(self._guarded, fn, *args)

    @staticmethod
    def _guarded(fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except ProphecyError as exc:  # expected: whoever waits reports it
            log.debug("background task %s: %s", getattr(fn, "__name__", fn), exc)
            raise
        except Exception:
            log.exception("background task %s failed", getattr(fn, "__name__", fn))
            raise

    def _loop(self) -> None:
        next_tick = time.monotonic() + self._tick_interval
        while True:
            due: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []
            with self._wake:
                if self._stopped:
                    return
                now = time.monotonic()
                while self._heap and self._heap[0][0] <= now:
                    _, _, fn, args = heapq.heappop(self._heap)
                    due.append((fn, args))
                if not due:
                    wake_at = min(self._heap[0][0], next_tick) if self._heap else next_tick
                    if wake_at > now:
                        self._wake.wait(wake_at - now)
            try:
                for fn, args in due:
                    self.call_soon(fn, *args)
                if time.monotonic() >= next_tick:
                    next_tick = time.monotonic() + self._tick_interval
                    self.call_soon(self._tick)
            except RuntimeError:  # the pool is shut down: stop() has begun
                return

    def stop(self) -> None:
        with self._wake:
            self._stopped = True
            self._heap.clear()
            self._wake.notify()
        if self._thread.is_alive():
            self._thread.join(5)
        self._pool.shutdown(wait=False, cancel_futures=True)
