"""``jupyter prophecy run``: execute a notebook headless and print what its cells output."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "run",
        help="Run a notebook headless and print its outputs.",
        description="Execute every cell of a notebook with nbclient, print the outputs, and "
        "exit 1 at the first cell that fails.",
    )
    parser.add_argument("notebook", type=Path, help="The .ipynb file.")
    parser.add_argument("--kernel", default="python3", help="Kernel name (default %(default)s).")
    parser.add_argument("--timeout", type=int, default=1800, help="Seconds per cell (default %(default)s).")
    parser.add_argument("--output", type=Path, help="Also save the executed notebook here.")
    parser.set_defaults(handler=run)


def output_text(output: dict) -> str:
    """The text an output shows in a terminal."""
    output_type = output.get("output_type")
    if output_type == "stream":
        return output.get("text", "")
    if output_type == "error":
        return "\n".join(output.get("traceback", [])) + "\n"
    data = output.get("data", {})
    text = data.get("text/plain", "")
    if not text and "image/png" in data:
        text = "<image/png>"
    return text + "\n" if text else ""


def print_cell(index: int, cell) -> None:
    first_line = cell.source.strip().splitlines()[0] if cell.source.strip() else ""
    print(f"--- [{index}] {first_line}")
    for output in cell.get("outputs", []):
        sys.stdout.write(output_text(output))
    sys.stdout.flush()


def run(args: argparse.Namespace) -> int:
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    path = args.notebook.resolve()
    if not path.is_file():
        raise ValueError(f"no notebook at {path}")
    notebook = nbformat.read(path, as_version=4)
    os.environ["JPY_SESSION_NAME"] = str(path)
    client = NotebookClient(
        notebook,
        kernel_name=args.kernel,
        timeout=args.timeout,
        resources={"metadata": {"path": str(path.parent)}},
    )
    failed = None
    with client.setup_kernel():
        for index, cell in enumerate(notebook.cells):
            if cell.cell_type != "code":
                continue
            try:
                client.execute_cell(cell, index)
            except CellExecutionError as exc:
                failed = exc
            print_cell(index, cell)
            if failed is not None:
                break
    if args.output:
        nbformat.write(notebook, args.output)
    if failed is not None:
        print(f"Cell {index} failed: {failed.ename}: {failed.evalue}", file=sys.stderr)
        return 1
    print(f"All cells of {path.name} ran.")
    return 0
