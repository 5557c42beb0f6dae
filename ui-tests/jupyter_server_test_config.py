"""The Jupyter server the browser tests start (galata's settings, as root, a throw-away data dir),
with what the Jobs test needs made before it starts (see jobs_setup.py)."""

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

from jupyterlab.galata import configure_jupyter_server

configure_jupyter_server(c)  # noqa: F821
# galata makes a workspaces folder, a root folder (unless given one) and a shell rc file in /tmp.
atexit.register(shutil.rmtree, c.LabApp.workspaces_dir, True)  # noqa: F821
if "JUPYTERLAB_GALATA_ROOT_DIR" not in os.environ:
    atexit.register(shutil.rmtree, c.ServerApp.root_dir, True)  # noqa: F821
atexit.register(Path(c.ServerApp.terminado_settings["shell_command"][-1]).unlink, missing_ok=True)  # noqa: F821
c.ServerApp.allow_root = True  # noqa: F821
# No local JVM warming up at start: it would take the CPU from the first tests' saves.
c.ProphecyJupyter.local_warm_start = "never"  # noqa: F821
c.ProphecyJupyter.local_class_archive = "never"  # noqa: F821  (nor a class archive in a fresh data dir)
if "PROPHECY_JUPYTER_DATA_DIR" not in os.environ:
    os.environ["PROPHECY_JUPYTER_DATA_DIR"] = tempfile.mkdtemp(prefix="prophecy-ui-")
    atexit.register(shutil.rmtree, os.environ["PROPHECY_JUPYTER_DATA_DIR"], True)

# The stand-ins live in the repository's tests/ package; this folder holds the setup.
HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

import jobs_setup  # noqa: E402

jobs_setup.start()
