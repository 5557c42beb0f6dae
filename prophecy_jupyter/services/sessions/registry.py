"""The sessions and runs the service holds, and the one way to address each: a session by its user,
notebook and fabric (or, for the API, its id among the user's), a run by its id among the user's."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator

from prophecy_jupyter.errors import NotFound
from prophecy_jupyter.services.sessions.model import ManagedSession, Run

SessionKey = tuple[str, str, str]
"""User, notebook, fabric id."""


class Aging:
    """Keys in the order they came, each with when it came. Two deques of plain values rather
    than a pair per key: at hundreds of runs a second, each pair would be one more object for
    Python's collector to scan, and its young collections stop the server's event loop."""

    __slots__ = ("_at", "_keys")

    def __init__(self) -> None:
        self._at: deque[float] = deque()
        self._keys: deque[str] = deque()

    def add(self, at: float, key: str) -> None:
        self._at.append(at)
        self._keys.append(key)

    def pop_before(self, cutoff: float) -> Iterator[str]:
        """Remove and yield, oldest first, the keys that came before ``cutoff``."""
        while self._at and self._at[0] < cutoff:
            self._at.popleft()
            yield self._keys.popleft()


class Registry:
    def __init__(self) -> None:
        self._sessions: dict[SessionKey, ManagedSession] = {}
        self._by_id: dict[str, ManagedSession] = {}
        """The same sessions by id: the API finds one per request, among hundreds."""
        self._runs: dict[str, Run] = {}
        self._finished = Aging()
        """The ids of runs as they finished, to forget the oldest without looking at the others
        (ids, not runs: a forgotten run is freed at once)."""
        self._told = Aging()
        """The ids of runs as clients were told how they ended."""
        self._fetched: deque[Run] = deque()
        """Runs whose table data a client took, in that order, to drop the data a little later."""
        self._ended: dict[SessionKey, str] = {}
        self.lock = threading.RLock()

    # -- sessions -------------------------------------------------------------------------------

    def get(self, key: SessionKey) -> ManagedSession | None:
        with self.lock:
            return self._sessions.get(key)

    def add(self, managed: ManagedSession) -> ManagedSession:
        """Keep ``managed`` (the one already kept under its key wins)."""
        with self.lock:
            kept = self._sessions.setdefault(managed.key, managed)
            self._by_id[kept.id] = kept
            return kept

    def remove(self, managed: ManagedSession) -> None:
        with self.lock:
            if self._sessions.get(managed.key) is managed:
                del self._sessions[managed.key]
                del self._by_id[managed.id]

    def take(self, user: str, notebook: str, fabric_id: str | None = None) -> list[ManagedSession]:
        """Remove and return the notebook's sessions (on one fabric, or all)."""
        with self.lock:
            keys = [k for k in self._sessions if k[:2] == (user, notebook) and fabric_id in (None, k[2])]
            taken = [self._sessions.pop(k) for k in keys]
            for managed in taken:
                del self._by_id[managed.id]
            return taken

    def take_all(self) -> list[ManagedSession]:
        with self.lock:
            sessions = list(self._sessions.values())
            self._sessions.clear()
            self._by_id.clear()
            return sessions

    def all(self) -> list[ManagedSession]:
        with self.lock:
            return list(self._sessions.values())

    def of(self, user: str, notebook: str | None = None) -> list[ManagedSession]:
        """The user's sessions (of one notebook, or all)."""
        with self.lock:
            return [m for (u, nb, _), m in self._sessions.items() if u == user and notebook in (None, nb)]

    def by_id(self, user: str, session_id: str) -> ManagedSession:
        match = self._by_id.get(session_id)  # one read of a dict: no lock (each request asks)
        if match is None or match.user != user:
            raise NotFound(f"No session '{session_id}' of yours.")
        return match

    def note_ended(self, key: SessionKey, reason: str) -> None:
        """A session ended while nobody held it here (say, while the server was down): the next
        session under its key says so, unless one already runs under it (it started afresh)."""
        with self.lock:
            if key not in self._sessions:
                self._ended[key] = reason

    def take_ended(self, key: SessionKey) -> str | None:
        """Why the session under ``key`` had ended, once (None if nothing is known)."""
        with self.lock:
            return self._ended.pop(key, None)

    def live_count(self, user: str, besides: ManagedSession) -> int:
        with self.lock:
            return sum(1 for m in self._sessions.values() if m.user == user and m.live and m is not besides)

    # -- runs -----------------------------------------------------------------------------------

    def add_run(self, run: Run) -> None:
        with self.lock:
            self._runs[run.id] = run

    def run(self, user: str, run_id: str) -> Run:
        run = self._runs.get(run_id)  # one read of a dict: no lock (each long poll asks)
        if run is None or run.session.user != user:
            raise NotFound(f"No run '{run_id}' of yours (finished runs are kept for a while only).")
        return run

    def runs_held(self) -> int:
        return len(self._runs)

    def runs_of(self, user: str) -> list[Run]:
        with self.lock:
            return [r for r in self._runs.values() if r.session.user == user]

    def finished(self, run: Run) -> None:
        """``run`` just finished (it is forgotten ``kept`` seconds later)."""
        with self.lock:
            self._finished.add(run.finished_at or time.monotonic(), run.id)

    def told(self, run: Run) -> None:
        """A client was just told how ``run`` ended (it is forgotten ``told_kept`` seconds later,
        unless it holds a table not fetched yet)."""
        with self.lock:
            self._told.add(time.monotonic(), run.id)

    def fetched(self, run: Run) -> None:
        """A client took ``run``'s table data for the first time (dropped ``fetched_kept`` later)."""
        with self.lock:
            self._fetched.append(run)

    def forget_runs(self, kept: float, fetched_kept: float, told_kept: float) -> None:
        """Drop runs finished more than ``kept`` seconds ago or told more than ``told_kept`` seconds
        ago (but a table not fetched), and table data fetched more than ``fetched_kept`` seconds
        ago (looking only at those)."""
        now = time.monotonic()
        with self.lock:
            for run_id in self._finished.pop_before(now - kept):
                self._runs.pop(run_id, None)
            for run_id in self._told.pop_before(now - told_kept):
                run = self._runs.get(run_id)
                if run is not None and run.payload is None:
                    del self._runs[run.id]
            while self._fetched and now - (self._fetched[0].fetched_at or now) > fetched_kept:
                self._fetched.popleft().payload = None
