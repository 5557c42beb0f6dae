"""``jupyter prophecy exec``: run code on a fabric and print the result."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prophecy_jupyter.services.sessions import Run, SessionService


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "exec",
        help="Run code on a fabric and print the result.",
        description="Run Python (PySpark) or SQL on a fabric (SQL warehouses run SQL only). Exits 1 "
        "with the remote error when the code fails.",
    )
    parser.add_argument("code", help="The code to run, or - to read it from stdin.")
    parser.add_argument("--fabric", required=True, help="Fabric name (see `fabric list`).")
    parser.add_argument("--language", choices=["python", "sql"], default="python")
    parser.add_argument("--json", action="store_true", help="Print the result as JSON.")
    parser.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="NAME[:TYPE]=VALUE",
        help="A value for :NAME in a SQL query (repeatable); TYPE is STRING unless given, e.g. n:INT=5.",
    )
    parser.add_argument(
        "-n",
        "--maxrows",
        type=int,
        default=100_000,
        help="Most rows of a SQL result (default %(default)s; -1 for all).",
    )
    parser.set_defaults(handler=run)


class TerminalWaiter:
    """Shows progress on stderr when it is a terminal; Ctrl-C cancels the remote statement."""

    def __init__(self, service: SessionService):
        self.service = service
        self.show = sys.stderr.isatty()

    def __call__(self, run: Run) -> Run:
        try:
            while not run.wait(0.2):
                if self.show and run.elapsed > 1:
                    progress = "" if run.progress is None else f" {run.progress:.0%}"
                    print(f"\rrunning{progress} {run.elapsed:.0f} s", end="", file=sys.stderr)
        except KeyboardInterrupt:
            self.service.cancel(run)
            run.wait(15)
            raise
        finally:
            if self.show:
                print("\r\033[K", end="", file=sys.stderr)
        return run


def run(args: argparse.Namespace) -> int:
    from prophecy_jupyter.cli.context import services
    from prophecy_jupyter.results.display import as_json, as_text
    from prophecy_jupyter.services.sessions import table_result
    from prophecy_jupyter.sql_parameters import SqlParameter

    code = sys.stdin.read() if args.code == "-" else args.code
    parameters = [SqlParameter.parse(p) for p in args.param]
    if parameters and args.language != "sql":
        raise ValueError("--param is for SQL (--language sql).")
    with services() as (built, user):
        service = built.sessions
        notebook = f"cli-{os.getpid()}"
        waiter = TerminalWaiter(service)
        notify = lambda message: print(message, file=sys.stderr)  # noqa: E731
        if args.language == "sql":
            query = code.strip().rstrip(";")
            result = service.fetch_sql(
                user, notebook, args.fabric, query, args.maxrows, parameters, waiter, notify
            )
        else:
            result = table_result(service.run(user, notebook, args.fabric, code, "pyspark", waiter, notify))
    if args.json:
        print(json.dumps(as_json(result), indent=2, default=str))
    elif result.ok:
        text = as_text(result)
        if text:
            print(text)
    else:
        print(as_text(result), file=sys.stderr)
    return 0 if result.ok else 1
