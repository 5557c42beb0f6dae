"""A bounded log of one session or batch, windowed the way Livy's ``/log`` endpoints are, and what
fills it from a process's output."""

from __future__ import annotations

import asyncio
import collections


class LogBuffer:
    """Keeps the last ``keep`` lines while counting every line ever added."""

    def __init__(self, keep: int = 5000):
        self._lines: collections.deque[str] = collections.deque(maxlen=keep)
        self.total = 0

    def add(self, line: str) -> None:
        self._lines.append(line.rstrip("\n"))
        self.total += 1

    def tail(self, count: int) -> list[str]:
        return list(self._lines)[-count:] if count > 0 else []

    def window(self, start: int | None, size: int) -> tuple[int, list[str]]:
        """Lines ``[start, start+size)``; without ``start``, the last ``size`` lines."""
        first_kept = self.total - len(self._lines)
        if start is None:
            start = self.total - size
        start = max(start, first_kept, 0)
        offset = start - first_kept
        return start, list(self._lines)[offset : offset + max(size, 0)]

    def to_json(self, owner_id: int, start: int | None, size: int) -> dict:
        """The body of ``GET /sessions/{id}/log`` (note: the count is ``total``)."""
        first, lines = self.window(start, size)
        return {"id": owner_id, "from": first, "total": self.total, "log": lines}


async def pump(process: asyncio.subprocess.Process, into: LogBuffer) -> None:
    """Add each line ``process`` writes to its stdout to ``into``, until it closes."""
    assert process.stdout
    async for raw in process.stdout:
        into.add(raw.decode(errors="replace"))
