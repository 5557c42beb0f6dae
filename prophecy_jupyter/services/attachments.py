"""Which fabric each of a user's notebooks is attached to (the notebook's metadata says it too)."""

from __future__ import annotations

from sqlalchemy import delete

from prophecy_jupyter.errors import Invalid
from prophecy_jupyter.services.fabrics import FabricService
from prophecy_jupyter.store.database import Database
from prophecy_jupyter.store.models import Attachment, utcnow

MAX_PATH = 1024


def _check(notebook: str) -> str:
    if not notebook or len(notebook) > MAX_PATH or "\x00" in notebook:
        raise Invalid("notebook: a path of 1 to 1024 characters", "notebook")
    return notebook


class AttachmentService:
    def __init__(self, db: Database, fabrics: FabricService):
        self.db = db
        self.fabrics = fabrics

    def get(self, user: str, notebook: str) -> str | None:
        """The fabric the notebook is attached to, or None."""
        with self.db.transaction() as session:
            row = session.get(Attachment, (user, _check(notebook)))
            return row.fabric if row is not None else None

    def attach(self, user: str, notebook: str, fabric_ref: str) -> str:
        """Attach to a fabric the user may use; returns its reference."""
        ref = self.fabrics.get(user, fabric_ref).ref
        with self.db.transaction() as session:
            row = session.get(Attachment, (user, _check(notebook)))
            if row is None:
                session.add(Attachment(username=user, notebook=notebook, fabric=ref))
            else:
                row.fabric, row.updated_at = ref, utcnow()
        return ref

    def detach(self, user: str, notebook: str) -> None:
        with self.db.transaction() as session:
            session.execute(
                delete(Attachment).where(Attachment.username == user, Attachment.notebook == _check(notebook))
            )
