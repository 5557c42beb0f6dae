"""The kernel's API token, taken out of the environment when the interpreter starts.

The server gives each kernel it starts a token in ``PROPHECY_JUPYTER_KERNEL_TOKEN``. The
``prophecy_jupyter_kernel_token.pth`` file that the package installs calls :func:`take` as Python
starts, before any user code: the variable leaves ``os.environ`` (so subprocesses, interpreters and
``!env`` never see it) and its bytes in the process's initial environment block are overwritten
(so ``/proc/<pid>/environ`` does not show it either). Only this module keeps it.
"""

from __future__ import annotations

import ctypes
import os
import sys

from prophecy_jupyter.client.link import KERNEL_TOKEN_ENV

_token: str | None = None


def take() -> None:
    """Move the token from the environment into this module (idempotent)."""
    global _token
    value = os.environ.get(KERNEL_TOKEN_ENV)
    if value is None:
        return
    _token = value
    if sys.platform.startswith("linux"):
        _wipe_initial_environment(KERNEL_TOKEN_ENV)
    del os.environ[KERNEL_TOKEN_ENV]


def token() -> str | None:
    """The token this kernel was started with (None outside a server's kernel)."""
    take()
    return _token


def _wipe_initial_environment(name: str) -> None:
    """Overwrite ``name``'s value in the C environment, where ``/proc/self/environ`` reads it."""
    try:
        libc = ctypes.CDLL(None)
        entries = ctypes.POINTER(ctypes.c_void_p).in_dll(libc, "environ")
    except (OSError, ValueError):
        return
    prefix = name.encode() + b"="
    index = 0
    while entries[index]:
        address = entries[index]
        entry = ctypes.string_at(address)
        if entry.startswith(prefix):
            ctypes.memset(address + len(prefix), 0, len(entry) - len(prefix))
        index += 1
