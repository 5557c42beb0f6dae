"""Tables sent to a session as uploads: Arrow bytes kept in a file only the session's interpreter
is told about (``PROPHECY_GATEWAY_UPLOADS``), read and removed by the statement that takes them."""

from __future__ import annotations

import os
import shutil
import uuid

UPLOADS_ENV = "PROPHECY_GATEWAY_UPLOADS"


class Uploads:
    """The upload folders of a gateway's sessions, one private folder each."""

    def __init__(self, work_dir: str):
        self.root = os.path.join(work_dir, "uploads")

    def folder(self, session_id: int) -> str:
        """The session's folder (made, private to this user, if it is not there)."""
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        path = os.path.join(self.root, str(int(session_id)))
        os.makedirs(path, mode=0o700, exist_ok=True)
        return path

    def keep(self, session_id: int, data: bytes) -> str:
        """Write the bytes to a new file of the session's; the name its interpreter finds them by."""
        name = f"{uuid.uuid4().hex}.arrow"
        descriptor = os.open(
            os.path.join(self.folder(session_id), name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600
        )
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
        return name

    def discard(self, session_id: int) -> None:
        """Remove what the session was sent and never took (it ended)."""
        shutil.rmtree(os.path.join(self.root, str(int(session_id))), ignore_errors=True)
