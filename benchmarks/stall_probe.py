"""A plain process beside the server under test that sleeps as the server's loop watch does
(``benchmarks.loop_lag``) and records when it woke late: a late wake-up of the server's loop that
this probe saw too is the machine's, not the server's.

``python -m benchmarks.stall_probe FILE`` appends ``<unix time> <lag ms>`` lines to FILE until it
is stopped; :class:`StallProbe` starts it in a session of its own (as the server is started) and
reads it back.
"""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.common import REPO
from benchmarks.loop_lag import INTERVAL, LATE_MS


def watch(out: Path) -> None:
    """Sleep ``INTERVAL`` at a time forever; append each wake-up later than ``LATE_MS`` to ``out``."""
    with open(out, "a") as lines:
        while True:
            before = time.perf_counter()
            time.sleep(INTERVAL)
            lag_ms = (time.perf_counter() - before - INTERVAL) * 1000
            if lag_ms > LATE_MS:
                lines.write(f"{time.time():.4f} {lag_ms:.2f}\n")
                lines.flush()


class StallProbe:
    """The probe process, running while the ``with`` block does."""

    def __init__(self, out: Path):
        self.out = out
        self._process: subprocess.Popen | None = None

    def __enter__(self) -> StallProbe:
        self.out.unlink(missing_ok=True)
        self._process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.stall_probe", str(self.out)], cwd=REPO, start_new_session=True
        )
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(10)

    def stalls(self) -> list[tuple[float, float]]:
        """Every late wake-up so far: (unix time it woke, lag in ms)."""
        if not self.out.exists():
            return []
        return [
            (float(at), float(ms)) for at, ms in (line.split() for line in self.out.read_text().splitlines())
        ]


def overlaps(at: float, lag_ms: float, stalls: list[tuple[float, float]]) -> bool:
    """Whether the late wake-up at ``at`` (unix time) and one of ``stalls`` were waiting at once."""
    begun = at - lag_ms / 1000
    return any(begun < other_at and other_at - other_ms / 1000 < at for other_at, other_ms in stalls)


def late_wakeups(late: list[list[float]], stalls: list[tuple[float, float]]) -> list[dict[str, Any]]:
    """The server's loop's late wake-ups, each with whether the stall probe beside it waited then too."""
    return [
        {
            "at": datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds"),
            "ms": lag_ms,
            "probe_too": overlaps(at, lag_ms, stalls),
        }
        for at, lag_ms in late
    ]


if __name__ == "__main__":
    watch(Path(sys.argv[1]))
