"""A job's runs as the command line and the magics print them."""

from __future__ import annotations

from typing import Any


def run_line(run: dict[str, Any]) -> str:
    """A run (``Run.describe()``) on one line: id, state, start, duration; then the scheduler's
    error and the run's page, when there are."""
    took = f"{run['duration_seconds']:.0f} s" if run["duration_seconds"] is not None else "-"
    line = f"{run['run_id']}  {run['state']:<9} started {run['started'] or '-'}  took {took}"
    if run["error"]:
        line += f"\n    error: {run['error']}"
    if run["link"]:
        line += f"\n    {run['link']}"
    return line
