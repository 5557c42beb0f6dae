"""The service's periodic upkeep: runs finished long ago are forgotten, table data fetched a while
ago is dropped, sessions with running statements are checked and kept alive, and sessions that sit
idle are closed."""

from __future__ import annotations

import contextlib
import logging
import time

from prophecy_jupyter.engines.base import SessionState
from prophecy_jupyter.errors import EngineError, SessionGone
from prophecy_jupyter.services.sessions.ledger import Ledger
from prophecy_jupyter.services.sessions.lifecycle import Lifecycle
from prophecy_jupyter.services.sessions.model import ManagedSession
from prophecy_jupyter.services.sessions.registry import Registry
from prophecy_jupyter.services.sessions.scheduler import Scheduler
from prophecy_jupyter.services.settings import ServiceSettings

log = logging.getLogger(__name__)


class Upkeep:
    def __init__(
        self,
        registry: Registry,
        ledger: Ledger,
        lifecycle: Lifecycle,
        scheduler: Scheduler,
        settings: ServiceSettings,
    ):
        self.registry = registry
        self.ledger = ledger
        self.lifecycle = lifecycle
        self.scheduler = scheduler
        self.settings = settings

    def tick(self) -> None:
        """One round of upkeep (the scheduler calls it every ``tick_interval`` seconds)."""
        settings = self.settings
        self.registry.forget_runs(
            settings.finished_runs_kept, settings.fetched_tables_kept, settings.told_runs_kept
        )
        now = time.monotonic()
        for managed in self.registry.all():
            if not managed.live:
                continue
            if managed.active:
                if now >= managed.next_health:
                    managed.next_health = now + self.settings.health_interval
                    self.scheduler.call_soon(self._check_health, managed)
                if now >= managed.next_keepalive:
                    managed.next_keepalive = now + self.settings.keepalive_interval
                    self.scheduler.call_soon(self._keepalive, managed)
            elif now - managed.last_used > self.settings.idle_session_timeout:
                log.info("closing the idle session %s on %s", managed.id, managed.fabric.ref)
                self.scheduler.call_soon(self.lifecycle.stop, managed, "closed after sitting idle")

    def _check_health(self, managed: ManagedSession) -> None:
        try:
            remote = managed.engine.session(managed.remote.id)
        except SessionGone as exc:
            self.ledger.end(managed, str(exc))
            return
        except EngineError:
            return
        if remote.state == SessionState.ENDED:
            self.ledger.end(
                managed,
                f"The session on fabric '{managed.fabric.ref}' ended ({remote.raw_state}) while a "
                "statement was running; its state is lost. The next cell starts a new session.",
            )

    @staticmethod
    def _keepalive(managed: ManagedSession) -> None:
        with contextlib.suppress(EngineError):
            managed.engine.keepalive(managed.remote.id)
