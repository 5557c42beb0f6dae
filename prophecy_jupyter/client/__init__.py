"""The client the magics and the bridge kernel use: the Jupyter server's API over REST when the
kernel was started by a server with prophecy-jupyter (``rest``, which imports nothing of the
services, the store or the engines), else a session service in the kernel's own process
(``in_process``, loaded only then)."""

from __future__ import annotations

from prophecy_jupyter.client.backend import Backend


def connect() -> Backend:
    """The server's API when this kernel was started by a server that offers it; else in-process."""
    from prophecy_jupyter.client.rest import ServerBackend

    backend = ServerBackend.from_environment()
    if backend is not None:
        return backend
    from prophecy_jupyter.client.in_process import InProcessBackend

    return InProcessBackend()
