"""Notebook magics: ``%fabric``, ``%%spark``, ``%%sql``, ``%%configure`` and ``%%local``."""

from __future__ import annotations

import ast
import contextlib
import json
import os
import re
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from prophecy_jupyter.client.backend import Backend, RunHandle
from prophecy_jupyter.client.link import SERVER_URL_ENV
from prophecy_jupyter.client.rest import ServerBackend
from prophecy_jupyter.errors import ProphecyError, RemoteError
from prophecy_jupyter.magics.progress import CLUSTER_COMING_UP, ProgressWaiter, watch_cluster
from prophecy_jupyter.notebook_links import links_of_file
from prophecy_jupyter.results.display import remote_error, show, table_notes
from prophecy_jupyter.results.model import Result, ResultKind
from prophecy_jupyter.sql_parameters import SqlParameter

DEFAULT_MAX_ROWS = 100_000
FORCE = "\0force"
"""``%%configure -f`` with no fabric: sparkmagic's "restart even if nothing changed"."""
FABRIC_USAGE = """Usage:
  %fabric                 a fabric picker and session panel (in a notebook)
  %fabric list            fabrics you can use
  %fabric attach NAME     run %%spark and %%sql cells on fabric NAME (the notebook's default)
  %fabric detach          close this notebook's session on its default fabric and detach
  %fabric status          every fabric the notebook uses, its session and running statements
  %fabric logs [-n N]     the last N lines of the session's log (default 100)
  %fabric start           start the fabric's cluster (databricks) and show its progress"""


def notebook_identity(name: str | None = None) -> tuple[str, Path | None]:
    """This kernel's notebook: its path when Jupyter tells us (``JPY_SESSION_NAME``)."""
    name = name or os.environ.get("JPY_SESSION_NAME")
    if name:
        path = Path(name)
        return str(path), path if path.suffix == ".ipynb" else None
    return f"kernel-{os.getpid()}", None


def kernel_id() -> str | None:
    """The id Jupyter gave this kernel (its connection file is ``kernel-<id>.json``), if any."""
    try:
        from ipykernel.connect import get_connection_file

        match = re.fullmatch(r"kernel-(.+)\.json", Path(get_connection_file()).name)
    except (ImportError, RuntimeError):
        return None
    return match.group(1) if match else None


@contextlib.contextmanager
def friendly_errors():
    """Turn our own errors into a one-line message instead of a local traceback (code that failed
    on the fabric keeps its remote traceback)."""
    try:
        yield
    except RemoteError:
        raise
    except ProphecyError as exc:
        raise UsageError(str(exc)) from None


@magics_class
class FabricMagics(Magics):
    """Runs cells on the notebook's fabric through the session service (in the server, or here)."""

    def __init__(self, shell, backend_factory: Callable[[], Backend]):
        super().__init__(shell)
        self._backend_factory = backend_factory
        self._backend: Backend | None = None
        self.notebook_id, self._notebook_path = notebook_identity()
        self._attached: str | None = None
        self._detached = False
        self._kernel_id = kernel_id()
        self._on_close: list[Callable[[], None]] = []
        self._refs: dict[str, str] = {}
        """Fabric names this kernel resolved to references (asked of the server once each)."""
        if self._kernel_id and os.environ.get(SERVER_URL_ENV):
            shell.events.register("pre_run_cell", self.follow_notebook)

    def follow_notebook(self, *_: Any) -> None:
        """Before each cell, the notebook's path as the server knows it: it follows renames, the
        kernel's environment does not (a new notebook is renamed after its kernel starts)."""
        backend = self.backend
        if not isinstance(backend, ServerBackend) or self._kernel_id is None:
            return
        with contextlib.suppress(ProphecyError):
            path = backend.notebook_of_kernel(self._kernel_id)
            if path:
                self.notebook_id, self._notebook_path = notebook_identity(path)

    @property
    def notebook_path(self) -> Path | None:
        """The notebook's file, when Jupyter told the kernel."""
        return self._notebook_path

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            self._backend = self._backend_factory()
        return self._backend

    def on_close(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` when these magics close (the magics built on them)."""
        self._on_close.append(callback)

    def close(self) -> None:
        for callback in self._on_close:
            callback()
        self._on_close = []
        with contextlib.suppress(ValueError):  # not registered outside a server's kernels
            self.shell.events.unregister("pre_run_cell", self.follow_notebook)
        if self._backend is not None:
            self._backend.close()
            self._backend = None

    @property
    def attached(self) -> str | None:
        """The notebook's fabric as recorded now (``%fabric attach`` and the sidebar both record
        it), else the one in the file's metadata unless detached in this kernel."""
        with contextlib.suppress(ProphecyError):
            self._attached = self.backend.attachment(self.notebook_id)
        if self._attached or self._detached:
            return self._attached
        return links_of_file(self._notebook_path).fabric

    def require_fabric(self, chosen: str | None = None) -> str:
        """The fabric a cell runs on: the one it names (``-f``), else the notebook's default."""
        if chosen:
            return self.fabric_ref(chosen)
        fabric = self.attached
        if fabric is None:
            raise UsageError(
                "No fabric attached. Run %fabric attach NAME first (see %fabric list), "
                "or name one for the cell with -f NAME."
            )
        return fabric

    def fabric_ref(self, name: str) -> str:
        """The ``team/name`` reference of a fabric named by its reference or by a name only one of
        the user's fabrics has (any other name is left for the server to refuse in words)."""
        if name in self._refs:
            return self._refs[name]
        with friendly_errors():
            refs = [fabric["ref"] for fabric in self.backend.fabrics()]
        same = [name] if name in refs else [ref for ref in refs if ref.rpartition("/")[2] == name]
        if len(same) != 1:
            return name
        self._refs[name] = same[0]
        return same[0]

    # -- %fabric ----------------------------------------------------------------------------

    @line_cell_magic
    def fabric(self, line: str, cell: str | None = None) -> None:
        """Manage the notebook's fabric: list, attach NAME, detach, status, logs [-n N], start.
        With no argument, a fabric picker and session panel (in a notebook). As a cell's first
        line, ``%%fabric NAME`` runs the cell's PySpark on fabric NAME."""
        words = shlex.split(line)
        if cell is not None:
            if len(words) != 1:
                raise UsageError("A cell's first line %%fabric NAME names one fabric, e.g. %%fabric local.")
            self.spark(f"-f {shlex.quote(words[0])}", cell)
            return
        if not words and getattr(self.shell, "kernel", None) is not None:
            from IPython.display import display

            from prophecy_jupyter.magics.widgets import FabricPicker

            display(FabricPicker(self))
            return
        command, rest = (words[0], words[1:]) if words else ("status", [])
        handlers = {
            "list": self._list,
            "attach": self._attach,
            "detach": self._detach,
            "status": self._status,
            "logs": self._logs,
            "start": self._start,
        }
        if command not in handlers:
            raise UsageError(f"Unknown %fabric command {command!r}.\n{FABRIC_USAGE}")
        with friendly_errors():
            handlers[command](rest)

    def _list(self, args: list[str]) -> None:
        print(f"  {'fabric':<28} {'kind':<15} {'env':<8} endpoint")
        attached = self.attached
        for fab in self.backend.fabrics():
            mark = "*" if fab["ref"] == attached else " "
            print(f"{mark} {fab['ref']:<28} {fab['kind']:<15} {fab['environment']:<8} {fab['endpoint']}")

    def _attach(self, args: list[str]) -> None:
        if len(args) != 1:
            raise UsageError("Usage: %fabric attach NAME")
        attached = self.attached
        if attached and attached != args[0]:
            self.backend.detach(self.notebook_id, attached)
        fab = self.backend.attach(self.notebook_id, args[0])
        self._attached, self._detached = fab["ref"], False
        print(f"Attached to fabric '{fab['ref']}' ({fab['endpoint']}). %%spark and %%sql cells run there.")

    def _detach(self, args: list[str]) -> None:
        fabric = self.require_fabric()
        closed = self.backend.detach(self.notebook_id, fabric)
        self._attached, self._detached = None, True
        print(f"Detached from fabric '{fabric}'" + (" and closed its session." if closed else "."))

    def _status(self, args: list[str]) -> None:
        default = self.attached
        sessions = self.backend.status(self.notebook_id)
        others = sorted({row["fabric"] for row in sessions} - {default})
        if default is None:
            print("No fabric attached. Run %fabric attach NAME (see %fabric list).")
        for fabric in ([default] if default else []) + others:
            role = " (default)" if fabric == default and others else ""
            print(f"Fabric: {fabric}{role}")
            self._session_status(fabric, [row for row in sessions if row["fabric"] == fabric])

    @staticmethod
    def _session_status(fabric: str, sessions: list[dict[str, Any]]) -> None:
        """The notebook's session on one fabric, or why it has none."""
        live = [row for row in sessions if row["state"] != "ended"]
        if not live or live[0]["remote_id"] is None:
            ended = next((row for row in sessions if row["state"] == "ended"), None)
            if ended is not None:
                print(f"Session: none; the last one ended ({ended['ended_reason'] or 'no reason given'}).")
                print(
                    "The next %%spark or %%sql cell starts a new one; variables from earlier cells are gone."
                )
            else:
                print("Session: none yet (the first %%spark or %%sql cell starts one)")
            return
        row = live[0]
        print(f"Session: {row['remote_id']} ({row['state']}), application {row.get('app_id') or '-'}")
        for run in row["runs"]:
            progress = "-" if run["progress"] is None else f"{run['progress']:.0%}"
            detail = f" ({run['detail']})" if run.get("detail") else ""
            print(f"  running: {run['kind']} {run['state']} {progress} for {run['elapsed']:.1f} s{detail}")

    def _logs(self, args: list[str]) -> None:
        size = 100
        if args[:1] == ["-n"] and len(args) == 2 and args[1].isdigit():
            size = int(args[1])
        elif args:
            raise UsageError("Usage: %fabric logs [-n N]")
        lines = self.backend.logs(self.notebook_id, self.require_fabric(), size)
        print("\n".join(lines) if lines else "The session has no log yet.")

    def _start(self, args: list[str]) -> None:
        if args:
            raise UsageError("Usage: %fabric start   (starts the attached fabric's cluster)")
        fabric = self.require_fabric()
        cluster = self.backend.start_cluster(fabric)
        name = cluster["name"] or cluster["cluster_id"]
        if cluster["state"] in CLUSTER_COMING_UP:
            print(f"Starting cluster {name} of fabric '{fabric}'; interrupt to stop watching.")
            try:
                cluster = watch_cluster(lambda: self.backend.cluster(fabric), cluster)
            except KeyboardInterrupt:
                print(f"Stopped watching; cluster {name} keeps starting.")
                return
        print(
            f"Cluster {name} is {cluster['state']}"
            + (f" ({cluster['message']})." if cluster["message"] else ".")
        )

    # -- cells ------------------------------------------------------------------------------

    def waiter(self, fabric: str) -> ProgressWaiter:
        return ProgressWaiter(self.backend.cancel, fabric)

    def wait_with_notes(self, fabric: str, run: RunHandle) -> RunHandle:
        """Wait with progress, then say what the user should know about the run."""
        run = self.waiter(fabric)(run)
        for note in run.notes:
            print(note)
        return run

    def _store(self, name: str, result: Result, quiet: bool = False) -> None:
        if not name.isidentifier():
            raise UsageError(f"-o needs a Python variable name, not {name!r}")
        self.shell.user_ns[name] = result.table
        if not quiet:
            rows = len(result.table) if result.table is not None else 0
            print(f"Stored {rows:,} rows in the pandas DataFrame '{name}'.")
            for note in table_notes(result):
                print(note)

    def run_code(self, fabric: str, code: str, language: str = "pyspark") -> Result:
        """Run code on the fabric with a progress bar; Ctrl-C cancels it there."""
        run = self.wait_with_notes(fabric, self.backend.run(self.notebook_id, fabric, code, language, print))
        result = run.result or Result.of_error("Cancelled", "The statement was cancelled.")
        if result.kind is ResultKind.TABLE and result.table is None:
            return self.backend.frame(run)  # a table the fabric returned itself
        return result

    def fetch(self, fabric: str, source: str, limit: int) -> Result:
        """A remote DataFrame (``source`` evaluates to one there) as a typed pandas table."""
        return self._table(fabric, self.backend.table(self.notebook_id, fabric, source, limit, print))

    def fetch_sql(self, fabric: str, query: str, parameters: list[SqlParameter], limit: int) -> Result:
        """A SQL query's result (on a SQL warehouse, or ``spark.sql`` on Spark) as typed pandas."""
        run = self.backend.sql_table(self.notebook_id, fabric, query, parameters, limit, print)
        return self._table(fabric, run)

    def _table(self, fabric: str, run: RunHandle) -> Result:
        result = self.backend.frame(self.wait_with_notes(fabric, run))
        if not result.ok:
            raise remote_error(result)
        return result

    @magic_arguments()
    @argument("-f", "--fabric", help="Run the cell on this fabric instead of the notebook's default.")
    @argument(
        "-o", "--output", help="Copy this remote Spark DataFrame into a local pandas variable of that name."
    )
    @argument(
        "-n",
        "--maxrows",
        type=int,
        default=DEFAULT_MAX_ROWS,
        help="Rows to copy with -o (default 100000; -1 for all).",
    )
    @cell_magic
    def spark(self, line: str, cell: str) -> None:
        """Run PySpark code on the notebook's fabric, or the one named with -f (``spark`` is the
        remote SparkSession there; each fabric keeps its own session and variables)."""
        args = parse_argstring(self.spark, line)
        fabric = self.require_fabric(args.fabric)
        with friendly_errors():
            show(self.run_code(fabric, cell))
            if args.output:
                self._store(args.output, self.fetch(fabric, args.output, args.maxrows))

    @magic_arguments()
    @argument("-f", "--fabric", help="Run the query on this fabric instead of the notebook's default.")
    @argument("-o", "--output", help="Also store the result in this local pandas variable.")
    @argument(
        "-n",
        "--maxrows",
        type=int,
        default=DEFAULT_MAX_ROWS,
        help="Most rows to bring back (default 100000; -1 for all). A notice says when there are more.",
    )
    @argument("-q", "--quiet", action="store_true", help="Do not display the result.")
    @argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="NAME[:TYPE]=VALUE",
        help="A value for :NAME in the query (repeatable); TYPE is STRING unless given, e.g. n:INT=5.",
    )
    @cell_magic
    def sql(self, line: str, cell: str) -> None:
        """Run SQL on the attached fabric (Spark SQL, or a SQL warehouse); the result arrives as a
        typed pandas DataFrame."""
        args = parse_argstring(self.sql, line)
        query = cell.strip().rstrip(";")
        if not query:
            raise UsageError("%%sql needs a query in the cell.")
        fabric = self.require_fabric(args.fabric)
        with friendly_errors():
            parameters = [SqlParameter.parse(p) for p in args.param]
            result = self.fetch_sql(fabric, query, parameters, args.maxrows)
            if args.output:
                self._store(args.output, result, quiet=not args.quiet)
            if not args.quiet and result.kind is ResultKind.TABLE:
                if result.table is not None and len(result.table.columns) == 0:
                    print("Done.")
                else:
                    show(result)

    @magic_arguments()
    @argument(
        "-f",
        "--fabric",
        nargs="?",
        const=FORCE,
        help="Configure the session on this fabric instead of the notebook's default. "
        "-f alone keeps sparkmagic's meaning: restart even if nothing changed.",
    )
    @argument("--force", action="store_true", help="Restart the session even if nothing changed.")
    @cell_magic
    def configure(self, line: str, cell: str) -> None:
        """Session settings as JSON: {"conf": {...}}, a job size {"size": "M"}, or Livy fields
        such as {"driverMemory": "2g"}. A live session is restarted when they change."""
        args = parse_argstring(self.configure, line)
        force = args.force or args.fabric == FORCE
        fabric = self.require_fabric(None if args.fabric == FORCE else args.fabric)
        try:
            settings = json.loads(cell or "{}")
        except ValueError as exc:
            raise UsageError(f"%%configure needs JSON: {exc}") from None
        if not isinstance(settings, dict):
            raise UsageError('%%configure needs a JSON object, e.g. {"conf": {...}} or {"size": "M"}')
        with friendly_errors():
            restarted = self.backend.configure(self.notebook_id, fabric, settings, print)
            if force and not restarted:
                print(f"Restarting the session on '{fabric}' as asked (-f).")
                self.backend.restart(self.notebook_id, fabric, print)

    @cell_magic
    def local(self, line: str, cell: str) -> Any:
        """Run the cell in this kernel instead of on the fabric; its last expression is shown."""
        tree = ast.parse(cell, filename="<local>")
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        namespace = self.shell.user_ns
        exec(compile(tree, "<local>", "exec"), namespace)
        if last is None:
            return None
        return eval(compile(ast.Expression(last.value), "<local>", "eval"), namespace)
