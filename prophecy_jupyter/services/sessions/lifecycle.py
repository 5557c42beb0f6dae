"""A notebook's session on a fabric from start to stop: opened (or reused) on the pool so a caller
can always be interrupted, waited for with progress, restarted with new settings, asked how it is,
and closed."""

from __future__ import annotations

import contextlib
import logging
import time
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import replace
from typing import Any

from prophecy_jupyter.engines.base import Engine, RemoteSession, SessionState
from prophecy_jupyter.errors import EngineError, LimitReached, SessionGone
from prophecy_jupyter.services.sessions.directory import Directory
from prophecy_jupyter.services.sessions.ledger import Ledger
from prophecy_jupyter.services.sessions.model import ManagedSession, Notify, quiet, session_name
from prophecy_jupyter.services.sessions.registry import Registry
from prophecy_jupyter.services.sessions.scheduler import Scheduler
from prophecy_jupyter.services.sessions.settings import session_settings
from prophecy_jupyter.services.settings import ServiceSettings

log = logging.getLogger(__name__)


class Lifecycle:
    def __init__(
        self,
        directory: Directory,
        registry: Registry,
        ledger: Ledger,
        scheduler: Scheduler,
        settings: ServiceSettings,
    ):
        self.directory = directory
        self.registry = registry
        self.ledger = ledger
        self.scheduler = scheduler
        self.settings = settings

    def managed(self, user: str, notebook: str, fabric_ref: str) -> ManagedSession:
        """The notebook's session record on the fabric (created, not started, if new)."""
        fabric = self.directory.fabric(user, fabric_ref)
        engine = self.directory.engine(user, fabric)
        with self.registry.lock:
            key = (user, notebook, fabric.id)
            managed = self.registry.get(key)
            if managed is None:
                spec = self.directory.spec_for(user, notebook, fabric)
                ended = self.registry.take_ended(key)
                return self.registry.add(
                    ManagedSession(user, notebook, fabric, engine, spec, ended_reason=ended)
                )
            if managed.engine is not engine:
                managed.fabric, managed.engine = fabric, engine
            return managed

    def session(self, user: str, notebook: str, fabric_ref: str, notify: Notify = quiet) -> ManagedSession:
        """The notebook's live session on the fabric, opened and waited for if needed.

        The work happens on the pool, so an interrupted caller leaves a session that finishes
        starting in the background and is reused by the next call.
        """
        managed = self.managed(user, notebook, fabric_ref)
        if not managed.live:
            self._check_limit(managed)
            future = self.scheduler.call_soon(self.ensure_started, managed, notify)
            while True:
                try:
                    future.result(timeout=0.2)
                    break
                except FutureTimeout:
                    continue
        _tell(managed, notify)
        return managed

    def start_in_background(self, user: str, notebook: str, fabric_ref: str) -> ManagedSession:
        """Start the notebook's session without waiting, so the first cell finds it ready.

        A failure is only logged here; the next cell that needs the session tries again and
        reports it, and hears what the user should know (say, that an earlier session had ended).
        """
        managed = self.managed(user, notebook, fabric_ref)
        if not managed.live:
            self._check_limit(managed)
            self.scheduler.call_soon(self.ensure_started, managed, None)
        return managed

    def _check_limit(self, starting: ManagedSession) -> None:
        limit = self.settings.max_sessions_per_user
        live = self.registry.live_count(starting.user, besides=starting)
        if limit and live >= limit:
            raise LimitReached(
                f"You have {live} live sessions, the most allowed; stop one first "
                f"(`%fabric detach` in its notebook, or in the sidebar)."
            )

    def ensure_started(self, managed: ManagedSession, notify: Notify | None) -> None:
        """Open the session unless it is live. ``notify`` hears the progress, and that an ended
        session is replaced; with None (nobody waits), the latter is kept for the next cell."""
        with managed.lock:
            if managed.live:
                return
            if managed.remote is not None or managed.ended_reason:
                why = (managed.ended_reason or (managed.remote.raw_state if managed.remote else "")).rstrip(
                    "."
                )
                managed.notices.append(
                    f"The session on fabric '{managed.fabric.ref}' had ended{f' ({why})' if why else ''}; "
                    "starting a new one. Variables from earlier cells are gone."
                )
                managed.remote, managed.ended_reason = None, None
            if notify is None:
                notify = quiet
            else:
                _tell(managed, notify)
            managed.spec = replace(managed.spec, name=session_name(managed.user))
            managed.engine.prepare(notify, self.settings.session_startup_timeout)
            remote = managed.engine.open_session(managed.spec)
            for note in remote.notes:
                notify(note)
            managed.remote = self._wait_until_ready(managed, remote, notify)
            managed.last_used = time.monotonic()
            self.ledger.records.opened(managed)

    def _wait_until_ready(
        self, managed: ManagedSession, remote: RemoteSession, notify: Notify
    ) -> RemoteSession:
        started = time.monotonic()
        next_notice = started + 5.0
        while remote.state == SessionState.STARTING:
            waited = time.monotonic() - started
            if waited > self.settings.session_startup_timeout:
                with contextlib.suppress(EngineError):
                    managed.engine.close_session(remote.id)
                raise EngineError(
                    f"The session on fabric '{managed.fabric.ref}' did not start within "
                    f"{self.settings.session_startup_timeout:.0f} s; it was stopped. See `%fabric logs`."
                )
            if time.monotonic() >= next_notice:
                notify(f"Still starting the session on fabric '{managed.fabric.ref}' ({waited:.0f} s)...")
                next_notice += 15.0
            if managed.engine.supports_long_poll:
                remote = managed.engine.session(remote.id, wait=self.settings.long_poll_wait)
            else:
                time.sleep(min(0.25, max(0.02, 0.05 * waited)))
                remote = managed.engine.session(remote.id)
        if remote.state == SessionState.ENDED:
            tail = _log_tail(managed.engine, remote.id)
            raise EngineError(
                f"The session on fabric '{managed.fabric.ref}' failed to start ({remote.raw_state})."
                + (f" Its log ends with:\n{tail}" if tail else "")
            )
        return remote

    def configure(
        self, user: str, notebook: str, fabric_ref: str, settings: dict[str, Any], notify: Notify = quiet
    ) -> bool:
        """Set the notebook's session settings; restart a live session that differs. True if restarted."""
        checked = session_settings(settings)
        fabric = self.directory.fabric(user, fabric_ref)
        spec = self.directory.configure(user, notebook, fabric, checked)
        managed = self.registry.get((user, notebook, fabric.id))
        later = f"Session settings saved; they apply when the session on '{fabric.ref}' starts."
        if managed is None:
            notify(later)
            return False
        if (spec.kind, spec.conf, spec.resources) == (
            managed.spec.kind,
            managed.spec.conf,
            managed.spec.resources,
        ):
            notify(f"The session on '{fabric.ref}' already has these settings.")
            return False
        managed.spec = spec
        if not managed.live:
            notify(later)
            return False
        notify(
            f"Restarting the session on '{fabric.ref}' to apply the new settings; variables from "
            "earlier cells are gone."
        )
        self.restart(managed, notify)
        return True

    def restart(self, managed: ManagedSession, notify: Notify = quiet) -> ManagedSession:
        """Stop the session and start a new one for the same notebook and fabric."""
        self.stop(managed, "restarted")
        return self.session(managed.user, managed.notebook, managed.fabric.ref, notify)

    def stop(self, managed: ManagedSession, reason: str) -> None:
        """Cancel the session's runs and close it on the fabric (it may be started again)."""
        self.release(managed, reason)
        self.ledger.records.ended(managed.id, reason)

    def release(self, managed: ManagedSession, reason: str) -> None:
        """Stop as :meth:`stop` does, but leave the record as it is (a server that stops leaves
        the records of the sessions it ends for its next start to report)."""
        self.ledger.cancel_all(managed, reason)
        remote, managed.remote = managed.remote, None
        managed.ended_reason = reason
        if remote is not None and remote.state != SessionState.ENDED:
            with contextlib.suppress(EngineError):
                managed.engine.close_session(remote.id)

    def close(self, user: str, notebook: str, fabric_ref: str | None = None) -> int:
        """Close the notebook's sessions (on one fabric, or all); returns how many were live."""
        fabric_id = self.directory.fabric(user, fabric_ref).id if fabric_ref else None
        closing = self.registry.take(user, notebook, fabric_id)
        live = sum(1 for managed in closing if managed.live)
        for managed in closing:
            self.stop(managed, "stopped")
        return live

    def close_session(self, managed: ManagedSession) -> None:
        """Close one session and forget it."""
        self.registry.remove(managed)
        self.stop(managed, "stopped")

    def refresh(self, managed: ManagedSession) -> ManagedSession:
        """Ask the fabric how the session is now."""
        if managed.live:
            try:
                managed.remote = managed.engine.session(managed.remote.id)
            except SessionGone as exc:
                self.ledger.mark_ended(managed, str(exc))
            except EngineError:
                pass
        return managed

    def logs(self, managed: ManagedSession, size: int = 100) -> list[str]:
        """The last ``size`` lines of the session's log on the fabric."""
        if managed.remote is None:
            return []
        return managed.engine.logs(managed.remote.id, size)

    def complete(self, user: str, notebook: str, fabric_ref: str, code: str, cursor: int) -> list[str]:
        """Completions from the remote interpreter (empty when the session is not up)."""
        managed = self.managed(user, notebook, fabric_ref)
        if not managed.live:
            return []
        try:
            return managed.engine.complete(managed.remote.id, code, cursor, "pyspark")
        except EngineError:
            return []


def _tell(managed: ManagedSession, notify: Notify) -> None:
    """Say what the user should hear about the session, once."""
    with managed.lock:
        notices, managed.notices = managed.notices, []
    for notice in notices:
        notify(notice)


def _log_tail(engine: Engine, session_id: str, lines: int = 15) -> str:
    try:
        return "\n".join(engine.logs(session_id, size=lines))
    except EngineError:
        return ""
