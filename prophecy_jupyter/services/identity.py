"""Who the user is, outside a Jupyter request: the JupyterHub user, or the OS user."""

from __future__ import annotations

import getpass
import os


def local_username() -> str:
    """The name a single-user install, a kernel or the CLI acts as."""
    return os.environ.get("JUPYTERHUB_USER") or getpass.getuser()
