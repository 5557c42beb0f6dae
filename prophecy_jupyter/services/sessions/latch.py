"""``Latch``: what ``threading.Event`` does for a run's end, on one lock. A server holds thousands
of finished runs; an Event is five objects that each full garbage collection scans, a lock none."""

from __future__ import annotations

import threading


class Latch:
    """Set once; ``wait`` blocks until it is (or the time is up)."""

    __slots__ = ("_held", "_set")

    def __init__(self) -> None:
        self._set = False
        self._held = threading.Lock()
        self._held.acquire()  # released by set(): waiters block on it until then

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        """Open the latch (call once)."""
        self._set = True
        self._held.release()

    def wait(self, timeout: float | None = None) -> bool:
        """Whether the latch is set, waiting up to ``timeout`` seconds (None: until it is)."""
        if not self._set and self._held.acquire(timeout=-1 if timeout is None else max(0.0, timeout)):
            self._held.release()  # the next waiter goes on too
        return self._set


OPEN = Latch()
"""A latch already set: what a finished run keeps instead of its own."""
OPEN.set()
