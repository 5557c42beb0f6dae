"""Messages between the gateway and its interpreter processes.

Each message is a JSON object framed by a 4-byte big-endian length. The gateway side reads
with asyncio streams; the interpreter side uses a blocking socket.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import struct
import threading
from collections.abc import Iterator
from typing import Any

HEADER = struct.Struct(">I")
STREAM_BUFFER_BYTES = 64 * 1024 * 1024

# Environment variables that tell an interpreter process where to connect.
SOCKET_ENV = "PROPHECY_INTERPRETER_SOCKET"
TOKEN_ENV = "PROPHECY_INTERPRETER_TOKEN"
SESSION_ENV = "PROPHECY_INTERPRETER_SESSION"
#: What a spare interpreter (no session yet) names as its session.
SPARE = "spare"
#: The longest path a Unix socket is bound or reached at (``sun_path`` less its NUL, on Linux).
MAX_SOCKET_PATH = 107


@contextlib.contextmanager
def bindable(path: str) -> Iterator[str]:
    """An address to bind the Unix socket ``path`` at: itself, or, when it is too long (a long
    TMPDIR), the same file reached through a descriptor of its folder, open meanwhile (Linux)."""
    if len(os.fsencode(path)) <= MAX_SOCKET_PATH:
        yield path
        return
    folder = os.open(os.path.dirname(path), os.O_PATH | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{folder}/{os.path.basename(path)}"
    finally:
        os.close(folder)


def reachable(path: str) -> str:
    """How a process started in the folder of the Unix socket ``path`` reaches it: by that path,
    or, when it is too long to connect to, by its name in that folder."""
    return path if len(os.fsencode(path)) <= MAX_SOCKET_PATH else os.path.basename(path)


def encode(message: dict[str, Any]) -> bytes:
    """Frame one message."""
    body = json.dumps(message, separators=(",", ":"), default=str).encode()
    return HEADER.pack(len(body)) + body


async def read_message(reader) -> dict[str, Any] | None:
    """Read one message from an asyncio StreamReader; None at end of stream."""
    try:
        header = await reader.readexactly(HEADER.size)
    except Exception:
        return None
    (size,) = HEADER.unpack(header)
    body = await reader.readexactly(size)
    return json.loads(body)


class Channel:
    """The interpreter's end: a blocking socket shared by several threads for sending."""

    def __init__(self, sock: socket.socket):
        self._sock = sock
        self._reader = sock.makefile("rb")
        self._send_lock = threading.Lock()

    @classmethod
    def connect(cls, path: str) -> Channel:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(path)
        return cls(sock)

    def send(self, message: dict[str, Any]) -> None:
        data = encode(message)
        with self._send_lock:
            self._sock.sendall(data)

    def receive(self) -> dict[str, Any] | None:
        header = self._reader.read(HEADER.size)
        if len(header) < HEADER.size:
            return None
        (size,) = HEADER.unpack(header)
        body = self._reader.read(size)
        if len(body) < size:
            return None
        return json.loads(body)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()
