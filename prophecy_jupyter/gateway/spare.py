"""A spare interpreter: started before any session asks for one, attached to the shared JVM, and
handed to the next session that runs there, so that the session is ready at once."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field

from prophecy_jupyter.gateway.logs import LogBuffer

#: Seconds with no session or statement starting or running before a spare taken is replaced.
REPLACE_AFTER_QUIET = 3.0
#: Spares that fail to start before the gateway stops keeping one.
MAX_FAILURES = 3


@dataclass(eq=False)
class Spare:
    """One interpreter process waiting for a session."""

    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    process: asyncio.subprocess.Process | None = None
    log: LogBuffer = field(default_factory=LogBuffer)
    taken: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    """Set to the session that takes the spare (cancelled when the spare is dropped)."""
