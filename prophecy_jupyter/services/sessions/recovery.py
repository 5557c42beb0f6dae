"""After a server restart: the recorded sessions still alive on their fabrics are taken back; the
others are recorded as ended with the reason, which the notebook's next cell tells its user; and a
notebook's ended sessions can be listed."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from prophecy_jupyter.engines.base import SessionSpec, SessionState
from prophecy_jupyter.errors import EngineError, ProphecyError, SessionGone, Unavailable
from prophecy_jupyter.services.sessions.directory import Directory
from prophecy_jupyter.services.sessions.model import ManagedSession
from prophecy_jupyter.services.sessions.records import ENDED, LIVE, SessionRecord, SessionRecords
from prophecy_jupyter.services.sessions.registry import Registry

log = logging.getLogger(__name__)

WITH_THE_SERVER = "with the server: sessions on this fabric end when the server stops"
REPLACED = "the notebook started a new session before the server had checked this one"


def rehydrate(records: SessionRecords, directory: Directory, registry: Registry) -> list[dict[str, Any]]:
    """Take back the recorded sessions that are still alive on their fabrics; record the others as
    ended, with the reason the notebook's next cell tells (those that cannot be checked while a
    service they need is unavailable stay recorded, for the next start). Returns what
    happened to each."""
    report = []
    for record in records.sessions(LIVE):
        key = (record.username, record.notebook, record.fabric_id)
        if (current := registry.get(key)) is not None and current.id == record.id:
            continue  # started by this server, while it was checking the others
        outcome = {"id": record.id, "user": record.username, "notebook": record.notebook}
        try:
            managed, reason = _reattach(record, directory)
        except Unavailable as exc:
            report.append({**outcome, "outcome": "unchecked", "reason": str(exc)})
            continue
        if managed is not None and registry.add(managed) is not managed:
            with contextlib.suppress(EngineError):
                managed.engine.close_session(managed.remote.id)
            managed, reason = None, REPLACED
        if managed is None:
            records.ended(record.id, reason)
            registry.note_ended(key, reason)
            report.append({**outcome, "outcome": "ended", "reason": reason})
            continue
        report.append({**outcome, "outcome": "reattached", "fabric": managed.fabric.ref})
    for item in report:
        log.info("session %s of %s (%s): %s", item["id"], item["user"], item["notebook"], item["outcome"])
    return report


def _reattach(record: SessionRecord, directory: Directory) -> tuple[ManagedSession | None, str]:
    """The recorded session, if its fabric still has it live; else None and why not."""
    try:
        fabric = directory.fabrics.get(record.username, record.fabric_id)
        if fabric.kind_of.ends_with_server:
            return None, WITH_THE_SERVER
        engine = directory.engine(record.username, fabric)
        remote = engine.session(record.remote_id) if record.remote_id else None
    except SessionGone:
        return None, "while the server was down; the fabric no longer knows it"
    except Unavailable:
        raise
    except ProphecyError as exc:
        return None, f"the server restarted and could not check it: {exc}"
    if remote is None:
        return None, "while the server was down, before it had started"
    if remote.state == SessionState.ENDED:
        return None, f"while the server was down; the fabric reports it {remote.raw_state}"
    spec = SessionSpec(
        kind=record.spec.get("kind", "pyspark"),
        conf=record.spec.get("conf", {}),
        resources=record.spec.get("resources", {}),
    )
    return ManagedSession(
        record.username, record.notebook, fabric, engine, spec, id=record.id, remote=remote
    ), ""


def ended_sessions(
    records: SessionRecords, directory: Directory, user: str, notebook: str | None = None, most: int = 20
) -> list[dict[str, Any]]:
    """Recorded sessions of the user that have ended, newest first, with the reason and the fabric
    named as live sessions name it."""
    ended = [r for r in records.sessions(ENDED, user) if notebook in (None, r.notebook)][:most]
    return [
        {
            "id": r.id,
            "notebook": r.notebook,
            "fabric": _fabric_ref(directory, user, r.fabric_id),
            "state": "ended",
            "remote_id": r.remote_id,
            "app_id": None,
            "ended_reason": r.ended_reason,
            "runs": [],
        }
        for r in ended
    ]


def _fabric_ref(directory: Directory, user: str, fabric_id: str) -> str:
    """``team/name`` of the fabric (its id, if it was deleted or the user may no longer use it)."""
    try:
        return directory.fabric(user, fabric_id).ref
    except ProphecyError:
        return fabric_id
