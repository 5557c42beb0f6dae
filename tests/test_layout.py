"""The package's shape that the layers contracts (import-linter) cannot see."""

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import prophecy_jupyter
from prophecy_jupyter.vault.keys import new_key

PACKAGE = Path(prophecy_jupyter.__file__).parent
MOST_LINES = 300


def test_the_session_service_is_split_by_job_into_short_modules():
    sessions = PACKAGE / "services" / "sessions"
    lengths = {path.name: len(path.read_text().splitlines()) for path in sessions.glob("*.py")}
    parts = {"service.py", "lifecycle.py", "statements.py", "tables.py", "upkeep.py", "recovery.py"}
    assert parts <= set(lengths)
    assert {name: n for name, n in lengths.items() if n > MOST_LINES} == {}


KERNEL = """
import json, sys
from IPython.core.interactiveshell import InteractiveShell

shell = InteractiveShell.instance()
shell.run_line_magic("load_ext", "prophecy_jupyter")
backend = shell.magics_manager.registry["FabricMagics"].backend
heavy = [m for m in sys.modules if m.split(".")[0] in ("sqlalchemy", "pydantic", "pandas", "pyarrow")
         or m.startswith(("prophecy_jupyter.services", "prophecy_jupyter.store", "prophecy_jupyter.engines"))]
print(json.dumps({"backend": type(backend).__name__, "heavy": sorted(heavy)}))
"""


def magics_loaded(tmp_path, **env: str) -> dict:
    """What a kernel's process holds once the magics and their backend are loaded."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PROPHECY_JUPYTER_")}
    environment.update(PROPHECY_JUPYTER_DATA_DIR=str(tmp_path), PROPHECY_JUPYTER_KEY=new_key(), **env)
    done = subprocess.run(
        [sys.executable, "-c", KERNEL],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout.splitlines()[-1])


def test_a_kernel_that_talks_to_a_server_loads_neither_the_services_the_store_the_engines_nor_pandas(
    tmp_path,
):
    """``%load_ext`` is in a notebook's first cell: pandas and pyarrow (0.25 s) wait for a table."""
    rest = magics_loaded(
        tmp_path, PROPHECY_JUPYTER_SERVER_URL="http://127.0.0.1:9", PROPHECY_JUPYTER_KERNEL_TOKEN="t" * 32
    )
    assert rest == {"backend": "ServerBackend", "heavy": []}
    alone = magics_loaded(tmp_path)
    assert alone["backend"] == "InProcessBackend"
    assert {"sqlalchemy", "prophecy_jupyter.services.sessions"} <= set(alone["heavy"]), (
        "loaded only when needed"
    )


def test_the_local_fabrics_gateway_starts_without_the_store_or_the_services():
    """The local fabric starts its gateway with the gateway command alone: the first session waits
    for that process, and the store and the services took 0.4 s of it to import."""
    probe = (
        "import json, sys\n"
        "from prophecy_jupyter.cli import gateway_command\n"
        "from prophecy_jupyter.gateway import app\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'alembic')"
        " or m.startswith(('prophecy_jupyter.services', 'prophecy_jupyter.store')))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert json.loads(done.stdout) == []
    shown = subprocess.run(
        [sys.executable, "-m", "prophecy_jupyter.cli.gateway_command", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shown.returncode == 0 and "--spare-interpreter" in shown.stdout


def reads_of_the_environment(path: Path) -> list[int]:
    """Lines of a module that read an environment variable (``os.environ.get``, ``os.getenv``,
    ``os.environ[...]``, ``getpass.getuser`` which reads ``$USER``); handing the environment on to a
    child process is not reading it."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text())):
        reader = isinstance(node, ast.Call) and ast.unparse(node.func)
        if reader in ("os.environ.get", "os.getenv", "getpass.getuser"):
            lines.append(node.lineno)
        if isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ":
            lines.append(node.lineno)
    return lines


def test_services_read_no_environment_variable():
    services = PACKAGE / "services"
    found = {
        str(path.relative_to(PACKAGE)): lines
        for path in services.rglob("*.py")
        if (lines := reads_of_the_environment(path))
    }
    assert found == {}
    assert reads_of_the_environment(PACKAGE / "environment.py"), "the edge does read them"
