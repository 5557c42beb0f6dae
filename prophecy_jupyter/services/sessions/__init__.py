"""Remote sessions per user, notebook and fabric, and the runs sent to them.

The parts, each one job:

- ``service``: ``SessionService``, the one object callers use; it wires the parts below.
- ``directory``: fabrics and engines as the service finds them, and a notebook's session settings.
- ``registry``: the sessions and runs held, and how each is addressed.
- ``lifecycle``: a session opened (on the pool, so a caller can always be interrupted), waited
  for, restarted, asked how it is, and closed; sessions per user limited.
- ``statements``: code sent, polled from one scheduler with adaptive backoff, cancelled; sent
  once more in a new session only when the fabric lost the session before taking it.
- ``tables``: DataFrames fetched as chunks, one statement after another; SQL on warehouses.
- ``ledger``: the bookkeeping of runs starting and ending and sessions ending.
- ``upkeep``: health checks and keep-alives during long cells, idle sessions closed.
- ``recovery`` and ``records``: what is written down, so a restarted server finds its sessions.
- ``model`` (sessions and runs), ``settings``, ``scheduler``, ``latch`` (a run's end, waited
  for): the pieces the others share.
"""

from prophecy_jupyter.services.sessions.model import (
    ManagedSession,
    Notify,
    Run,
    TableRun,
    table_result,
    wait_for,
)
from prophecy_jupyter.services.sessions.service import SessionService

__all__ = [
    "ManagedSession",
    "Notify",
    "Run",
    "SessionService",
    "TableRun",
    "table_result",
    "wait_for",
]
