"""``%%send`` (and sparkmagic's ``%%send_to_spark``): a local pandas DataFrame or pyarrow Table
sent to a fabric as a DataFrame there (see ``results.sending``)."""

from __future__ import annotations

import contextlib
import re
import uuid
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from prophecy_jupyter.errors import ProphecyError
from prophecy_jupyter.magics.fabric_magics import FabricMagics, friendly_errors
from prophecy_jupyter.results.display import remote_error
from prophecy_jupyter.results.model import Result, RunState
from prophecy_jupyter.results.sending import (
    DEFAULT_PART_BYTES,
    Sent,
    arrow_table,
    check_target,
    discard_code,
    encoded_parts,
    parse_sent,
)


def bodiless_sends(lines: list[str]) -> list[str]:
    """A cell that is only ``%%send ...`` (or sparkmagic's ``%%send_to_spark ...``) runs as the line
    magic: IPython refuses a cell magic with an empty body, and these take none."""
    if len(lines) == 1 and re.match(r"\s*%%send(_to_spark)?\b", lines[0]):
        return [lines[0].replace("%%", "%", 1)]
    return lines


@magics_class
class SendMagics(Magics):
    """Sends local tables to the notebook's fabrics, through the fabric magics' backend."""

    part_bytes = DEFAULT_PART_BYTES
    """About how many bytes of a sent table go in one request."""

    def __init__(self, shell, fabrics: FabricMagics):
        super().__init__(shell)
        self.fabrics = fabrics
        shell.input_transformers_cleanup.append(bodiless_sends)

    def close(self) -> None:
        with contextlib.suppress(ValueError):
            self.shell.input_transformers_cleanup.remove(bodiless_sends)

    def send_table(self, fabric: str, value: Any, variable: str, name: str, view: bool = False) -> Sent:
        """Send a local pandas DataFrame or pyarrow Table to the fabric as the DataFrame ``name``
        there, a part at a time; Ctrl-C cancels the part on its way, and the parts already there
        are dropped."""
        key = uuid.uuid4().hex
        backend = self.fabrics.backend
        parts = encoded_parts(arrow_table(value, variable), self.part_bytes)
        data, number, sent_any, attempted = next(parts), 0, False, False
        try:
            while True:
                following = next(parts, None)
                last = following is None
                attempted = True
                run = backend.send(
                    self.fabrics.notebook_id,
                    fabric,
                    data,
                    name,
                    key=key,
                    part=number,
                    last=last,
                    view=view,
                    notify=print,
                )
                sent_any = True
                run = self.fabrics.wait_with_notes(fabric, run)
                if run.state != RunState.FINISHED:
                    raise remote_error(run.result or Result.of_error("Cancelled", "The send was cancelled."))
                if last:
                    return parse_sent(run.result.text)
                data, number = following, number + 1
        except BaseException:
            # What reached the session is dropped: every part once one was taken (a cancel can come
            # too late for it), and a first part whose request was cut short when the session is
            # there to have taken it. No session is started only to drop nothing.
            notebook = self.fabrics.notebook_id
            if sent_any or (attempted and backend.has_session(notebook, fabric)):
                with contextlib.suppress(ProphecyError):  # best effort: the session may be gone
                    backend.run(notebook, fabric, discard_code(key), "pyspark", print)
            raise

    @magic_arguments()
    @argument("-i", "--input", required=True, help="The local pandas DataFrame (or pyarrow Table) to send.")
    @argument("-f", "--fabric", help="Send it to this fabric instead of the notebook's default.")
    @argument("-n", "--name", help="Its name on the fabric (default: the local variable's name).")
    @argument("--view", action="store_true", help="Also make it a temporary view of that name, for %%%%sql.")
    @argument("-m", "--maxrows", type=int, default=-1, help="Send at most this many rows (default -1: all).")
    @line_cell_magic
    def send(self, line: str, cell: str | None = None) -> None:
        """Send a local pandas DataFrame (or pyarrow Table) to a fabric as a DataFrame there: a Spark
        DataFrame on Spark fabrics, a Snowpark DataFrame on Snowflake; typed from its dtypes."""
        self._send(parse_argstring(self.send, line), cell)

    @magic_arguments()
    @argument("-i", "--input", required=True, help="The local variable to send.")
    @argument(
        "-t", "--type", default="str", choices=("str", "df"), help="str (a string) or df (a DataFrame)."
    )
    @argument("-n", "--name", help="Its name on the fabric (default: the local variable's name).")
    @argument("-m", "--maxrows", type=int, default=-1, help="Rows of a DataFrame to send (default -1: all).")
    @argument("-f", "--fabric", help="Send it to this fabric instead of the notebook's default.")
    @line_cell_magic
    def send_to_spark(self, line: str, cell: str | None = None) -> None:
        """sparkmagic's spelling: ``-t df`` sends a pandas DataFrame as ``%%send`` does (every row
        unless -m says otherwise), ``-t str`` a string."""
        args = parse_argstring(self.send_to_spark, line)
        if args.type == "df":
            args.view = False
            self._send(args, cell)
            return
        value = self._local(args.input)
        if not isinstance(value, str):
            raise UsageError(f"-t str sends a string; {args.input} is a {type(value).__name__}.")
        fabric = self.fabrics.require_fabric(args.fabric)
        with friendly_errors():
            name = check_target(args.name or args.input)
            result = self.fabrics.run_code(fabric, f"{name} = {value!r}")
            if not result.ok:
                raise remote_error(result)
        print(f"Sent the string '{args.input}' to fabric '{fabric}' as '{name}'.")

    def _send(self, args: Any, cell: str | None) -> None:
        if cell and cell.strip():
            raise UsageError("%%send takes no code: the cell's first line says what to send.")
        value = self._local(args.input)
        if args.maxrows >= 0 and hasattr(value, "head"):
            value = value.head(args.maxrows)
        elif args.maxrows >= 0 and hasattr(value, "slice"):
            value = value.slice(0, args.maxrows)
        fabric = self.fabrics.require_fabric(args.fabric)
        with friendly_errors():
            name = check_target(args.name or args.input)
            sent = self.send_table(fabric, value, args.input, name, args.view)
        columns = ", ".join(f"{column} {kind}" for column, kind in sent.schema)
        view = " and a temporary view" if args.view else ""
        print(f"Sent {sent.rows:,} rows to fabric '{fabric}' as '{name}'{view} ({columns}).")

    def _local(self, variable: str) -> Any:
        if variable not in self.shell.user_ns:
            raise UsageError(f"No local variable '{variable}' to send.")
        return self.shell.user_ns[variable]
