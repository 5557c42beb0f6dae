"""What an import of existing configuration did: the fabrics it created, the credentials it
stored, what it skipped and why, and what it changed on the way."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ImportReport:
    created: list[str] = field(default_factory=list)
    credentials: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """What was imported differently from the configuration, and why."""
