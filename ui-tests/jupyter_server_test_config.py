"""The Jupyter server the browser tests start (galata's settings, as root, a throw-away data dir)."""

import os
import tempfile

from jupyterlab.galata import configure_jupyter_server

configure_jupyter_server(c)  # noqa: F821
c.ServerApp.allow_root = True  # noqa: F821
os.environ.setdefault("PROPHECY_JUPYTER_DATA_DIR", tempfile.mkdtemp(prefix="prophecy-ui-"))
