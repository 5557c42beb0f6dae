"""Notebooks become pipelines: ``pipelines/<name>/`` with ``pipeline.py``, ``pipeline.yaml`` and a
README, generated deterministically (the same notebook gives byte-identical files).

The cells that ran on the fabric, in notebook order, become functions called from ``main()``.
Names a cell assigns are module globals (declared ``global`` in its function), so state flows
from cell to cell as in the notebook. ``%%sql`` cells become ``spark.sql(...)``: with ``-o NAME``
their DataFrame is kept as ``NAME``; queries only shown are left out, like ``%%local`` cells,
other magics and cells that only display. The cell tagged ``parameters`` (papermill's
convention) becomes typed command-line and job parameters. ``%%configure`` settings become the
pipeline's engine settings.

A pipeline runs on one fabric, the notebook's. A notebook whose pipeline cells run on another
fabric (``%%spark -f NAME``, ``%%sql --fabric NAME``, the bridge kernel's ``%%fabric NAME``), or
that sends the kernel's data to a fabric (``%%send``, ``%%send_to_spark``), is refused with the
list of which cell runs where, rather than made into a pipeline that runs those cells elsewhere
or without their data.
"""

from __future__ import annotations

import argparse
import ast
import json
import keyword
import re
import shlex
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from prophecy_jupyter.errors import Invalid
from prophecy_jupyter.notebook_links import links
from prophecy_jupyter.services import pipeline_code
from prophecy_jupyter.services.pipeline_code import FLAVORS, Flavor
from prophecy_jupyter.sql_parameters import SqlParameter

NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}\Z")
_DISPLAY_CALLS = {
    "display",
    "print",
    "show",
    "printSchema",
    "head",
    "take",
    "describe",
    "summary",
    "explain",
    "toPandas",
    "collect",
    "count",
}
_SHOWN_SQL = re.compile(r"^\s*(select|with|show|describe|desc|explain)\b", re.IGNORECASE)
_PARAMETER_TYPES = {bool: "bool", int: "int", float: "float", str: "str"}


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str
    default: Any


@dataclass
class Step:
    """One fabric cell as a function of the pipeline."""

    index: int
    code: str
    assigned: list[str] = field(default_factory=list)


@dataclass
class Pipeline:
    """What a notebook becomes; :meth:`files` renders it."""

    name: str
    notebook: str
    fabric: str | None
    fabric_kind: str | None
    parameters: list[Parameter]
    steps: list[Step]
    settings: dict[str, Any]
    flavor: str = "spark"
    """What the code runs on: ``spark`` (a SparkSession) or ``snowpark`` (a Snowpark session)."""

    def files(self) -> dict[str, bytes]:
        """Path under the project → content, for ``pipelines/<name>/``."""
        return pipeline_code.files(self)


def check_name(name: str) -> str:
    """A pipeline name: lower-case letters, digits, ``-`` and ``_`` (it becomes a folder)."""
    if not NAME.match(name or ""):
        raise Invalid(
            f"Pipeline name {name!r}: use lower-case letters, digits, '-' and '_', starting with a letter.",
            "name",
        )
    return name


def pipeline_name_for(notebook: str) -> str:
    """The default pipeline name of a notebook: its file name, made a valid name."""
    stem = PurePosixPath(notebook).stem.lower()
    name = re.sub(r"[^a-z0-9_-]+", "_", stem).strip("_-") or "pipeline"
    return check_name(name if name[0].isalpha() else f"p_{name}"[:63])


def from_notebook(
    notebook: dict[str, Any],
    path: str,
    name: str | None = None,
    fabric: str | None = None,
    fabric_kind: str | None = None,
    flavor: str = "spark",
) -> Pipeline:
    """The pipeline of a notebook (its JSON), named ``name`` or after the notebook file;
    ``fabric`` and ``fabric_kind`` say where the notebook ran, when known; ``flavor``, what its
    code runs on (the fabric kind's). Invalid when its pipeline cells run on another fabric than
    the notebook's, or when it sends the kernel's data to a fabric."""
    name = check_name(name) if name else pipeline_name_for(path)
    runs_on = FLAVORS[flavor]
    metadata = notebook.get("metadata") or {}
    bridge = (metadata.get("kernelspec") or {}).get("name") == "prophecy"
    default = _Default(fabric, links(notebook).fabric)
    parameters: list[Parameter] = []
    settings: dict[str, Any] = {}
    ran: list[tuple[int, str | None, str]] = []
    sent: list[tuple[int, str | None, str]] = []
    for number, cell in enumerate(notebook.get("cells") or [], start=1):
        if cell.get("cell_type") != "code":
            continue
        source = "".join(cell.get("source") or "")
        tags = (cell.get("metadata") or {}).get("tags") or []
        if "parameters" in tags:
            parameters = _parameters(_strip_magic_header(source))
            continue
        read = _read_cell(number, source, bridge, runs_on)
        where = None if read.fabric is None or default.is_named(read.fabric) else read.fabric
        if read.sends is not None:
            sent.append((number, where, read.sends))
        if read.settings is not None and where is None:
            settings.update(read.settings)  # another fabric's settings are not the pipeline's
        if read.code is not None:
            ran.append((number, where, read.code))
    _check_one_fabric(default, ran, sent)
    steps = [Step(index, code, _assigned(code, runs_on.session)) for index, (_, _, code) in enumerate(ran, 1)]
    return Pipeline(name, path, fabric, fabric_kind, parameters, steps, settings, flavor)


@dataclass(frozen=True)
class _Default:
    """The notebook's own fabric, where its pipeline runs: the one its callers know (a
    ``team/name`` reference), else its metadata's; None when neither is known."""

    fabric: str | None
    recorded: str | None

    @property
    def label(self) -> str:
        known = self.fabric or self.recorded
        return repr(known) if known else "the notebook's fabric"

    def is_named(self, name: str) -> bool:
        """Whether a cell's ``-f NAME`` is the notebook's fabric. A fabric is named by its
        ``team/name`` reference or by a name only one of the user's teams uses (a name of several
        is refused), so a bare name and a reference with that name are the same fabric."""
        names = {n for n in (self.fabric, self.recorded) if n}
        if name in names:
            return True
        bare = name.rpartition("/")[2]
        return any(bare == n.rpartition("/")[2] and ("/" not in n or "/" not in name) for n in names)


@dataclass(frozen=True)
class _Cell:
    """What one code cell means for the pipeline."""

    code: str | None = None
    """The Python it ran on a fabric, when the pipeline keeps it."""
    fabric: str | None = None
    """The fabric its header names (``-f``, ``--fabric``, ``%%fabric NAME``); None: the notebook's."""
    settings: dict[str, Any] | None = None
    """``%%configure``'s session settings."""
    sends: str | None = None
    """The magic that sent the kernel's data to the fabric (``%%send``, ``%%send_to_spark``)."""


class _HeaderError(Exception):
    pass


class _Header(argparse.ArgumentParser):
    """A cell magic's options, as its magic parses them (unknown options are left alone)."""

    def __init__(self, magic: str):
        super().__init__(prog=magic, add_help=False)

    def error(self, message: str):
        raise _HeaderError(message)


_FORCE = object()
_SPARK = _Header("%%spark")
_SPARK.add_argument("-o", "--output")
_SPARK.add_argument("-n", "--maxrows")
_SPARK.add_argument("-f", "--fabric")
_SQL = _Header("%%sql")
_SQL.add_argument("-o", "--output")
_SQL.add_argument("-n", "--maxrows")
_SQL.add_argument("-q", "--quiet", action="store_true")
_SQL.add_argument("-p", "--param", action="append", default=[])
_SQL.add_argument("-f", "--fabric")
_CONFIGURE = _Header("%%configure")
_CONFIGURE.add_argument("-f", "--fabric", nargs="?", const=_FORCE)  # `-f` alone: restart (sparkmagic's)
_CONFIGURE.add_argument("--force", action="store_true")
_FABRIC = _Header("%%fabric")
_FABRIC.add_argument("name", nargs="?")
_SEND = _Header("%%send")
_SEND.add_argument("-i", "--input")
_SEND.add_argument("-f", "--fabric")
_SEND.add_argument("-n", "--name")
_SEND.add_argument("--view", action="store_true")
_SENDS = {"%%send", "%send", "%%send_to_spark", "%send_to_spark"}


def _options(number: int, header: str, parser: _Header) -> argparse.Namespace:
    """The options of a cell's first line; Invalid, naming the cell, when its magic would have
    refused them."""
    try:
        return parser.parse_known_args(shlex.split(header)[1:])[0]
    except (_HeaderError, ValueError) as exc:
        raise Invalid(f"Cell {number}: `{header.strip()}` does not parse ({exc}).", "notebook") from None


def _strip_magic_header(source: str) -> str:
    first, _, rest = source.partition("\n")
    return rest if first.strip().startswith("%%") else source


def _read_cell(number: int, source: str, bridge: bool, runs_on: Flavor) -> _Cell:
    """What cell ``number`` (1-based, in notebook order) ran on a fabric, or sent to one; cells
    that ran in the kernel mean nothing to the pipeline."""
    stripped = source.strip()
    if not stripped:
        return _Cell()
    first, _, body = stripped.partition("\n")
    words = first.split()
    magic = words[0] if words else ""
    if magic == "%%spark":
        return _Cell(_ran(body.strip(), runs_on), _options(number, first, _SPARK).fabric)
    if magic == "%%fabric":  # the bridge kernel's cell on a named fabric
        return _Cell(_ran(body.strip(), runs_on), _options(number, first, _FABRIC).name)
    if magic == "%%sql":
        options = _options(number, first, _SQL)
        return _Cell(_sql_code(options.output, options.param, body, runs_on), options.fabric)
    if magic == "%%configure":
        fabric = _options(number, first, _CONFIGURE).fabric
        try:
            configured = json.loads(body or "{}")
        except ValueError:
            return _Cell()
        return _Cell(
            fabric=None if fabric is _FORCE else fabric,
            settings=configured if isinstance(configured, dict) else None,
        )
    if bridge and not stripped.startswith(("%", "!")):
        return _Cell(_ran(stripped, runs_on))
    # Other magics, shell escapes and, outside the bridge kernel, Python run in the kernel.
    return _sends(number, stripped) or _Cell()


def _sends(number: int, source: str) -> _Cell | None:
    """A cell that sends the kernel's data to a fabric: ``%%send`` (to the notebook's fabric or
    ``-f NAME``) or sparkmagic's ``%%send_to_spark`` (to its session, the notebook's fabric), as
    the cell's magic or as a line magic of a kernel cell."""
    lines = source.splitlines()
    if lines[0].lstrip().startswith("%%"):
        lines = lines[:1]  # a cell magic's body is not magics
    for line in lines:
        words = line.split()
        if words and words[0] in _SENDS:
            fabric = _options(number, line, _SEND).fabric if words[0].endswith("send") else None
            return _Cell(fabric=fabric, sends=words[0])
    return None


def _check_one_fabric(
    default: _Default, ran: list[tuple[int, str | None, str]], sent: list[tuple[int, str | None, str]]
) -> None:
    """Invalid, listing which cell runs where, unless every pipeline cell runs on one fabric, the
    notebook's (or, where the notebook's is not known, on one named fabric), and no cell sends the
    kernel's data."""
    fabrics = list(dict.fromkeys(where for _, where, _ in ran))
    other = [where for where in fabrics if where is not None]
    several = len(fabrics) > 1
    moved = bool(other) and (several or default.fabric is not None or default.recorded is not None)
    if not moved and not sent:
        return

    def label(where: str | None) -> str:
        return default.label if where is None else repr(where)

    groups: dict[tuple[str, str], list[int]] = {}
    for number, where, _ in ran:
        groups.setdefault(("run", label(where)), []).append(number)
    for number, where, magic in sent:
        groups.setdefault((magic, label(where)), []).append(number)
    listing = []
    for (what, where), numbers in sorted(groups.items(), key=lambda group: group[1][0]):
        cells = f"cell {numbers[0]}" if len(numbers) == 1 else f"cells {', '.join(map(str, numbers))}"
        one = len(numbers) == 1
        if what == "run":
            listing.append(f"{cells} {'runs' if one else 'run'} on {where}")
        else:
            listing.append(f"{cells} {'sends' if one else 'send'} local data to {where} ({what})")
    if several:
        lead = "This notebook runs cells on several fabrics, and a pipeline runs on one"
        advice = " Split it into one notebook per fabric, or move those cells to %%local."
    elif moved:
        lead = (
            f"A pipeline runs on the notebook's fabric, {default.label}, "
            "and this notebook's cells run on another"
        )
        advice = f" Make {other[0]!r} the notebook's fabric, or move those cells to %%local."
    else:
        lead = "This notebook sends data from the kernel to a fabric, which a pipeline cannot do"
        advice = ""
    if sent:
        advice += (
            " The data a cell sends exists only in the kernel: write it where the fabric reads it"
            " (a table or a file) and read it there instead."
        )
    raise Invalid(f"{lead}: {'; '.join(listing)}.{advice}", "notebook")


def _ran(code: str, runs_on: Flavor) -> str | None:
    """A Python cell's code, or None when it only shows something."""
    return None if not code or _display_only(code, runs_on.actions) else code


def _sql_code(output: str | None, parameters: list[str], query: str, runs_on: Flavor) -> str | None:
    """``%%sql [-o NAME] [-p NAME[:TYPE]=VALUE]...`` as the flavor's SQL call; None for a query
    only shown."""
    query = query.strip().rstrip(";")
    if not query:
        return None
    try:
        parsed = [SqlParameter.parse(value) for value in parameters]
    except Invalid as exc:
        raise Invalid(f"A %%sql cell: {exc}") from None
    call = runs_on.sql(query, parsed)
    if output and output.isidentifier() and not keyword.iskeyword(output):
        return f"{output} = {call}"
    return None if _SHOWN_SQL.match(query) else call + runs_on.execute


def _display_only(code: str, actions: frozenset[str]) -> bool:
    """Cells that only show something: bare names, or calls such as ``df.show()`` (``actions``
    are calls that do work even as bare statements, such as Snowpark's ``collect()``)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return False
    for statement in tree.body:
        if not isinstance(statement, ast.Expr):
            return False
        value = statement.value
        if isinstance(value, (ast.Name, ast.Attribute, ast.Constant)):
            continue
        if isinstance(value, ast.Call):
            func = value.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called in _DISPLAY_CALLS - actions:
                continue
        return False
    return True


def _assigned(code: str, session: str) -> list[str]:
    """Top-level names a cell binds (they become module globals of the pipeline)."""
    try:
        tree = ast.parse(code)
    except SyntaxError as exc:
        raise Invalid(f"A fabric cell is not valid Python ({exc.msg}, line {exc.lineno}).") from None
    names: set[str] = set()
    for statement in tree.body:
        for node in _binding_nodes(statement):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names.update((a.asname or a.name).split(".")[0] for a in node.names if a.name != "*")
    return sorted(names - {session})


def _binding_nodes(statement: ast.stmt):
    """The nodes of a top-level statement that can bind module names (not inside functions)."""
    yield statement
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return
    for child in ast.iter_child_nodes(statement):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            if not isinstance(child, ast.Lambda):
                yield child
            continue
        if isinstance(child, ast.stmt):
            yield from _binding_nodes(child)
        else:
            yield from (n for n in ast.walk(child) if isinstance(n, ast.Name))


def _parameters(code: str) -> list[Parameter]:
    """``name = literal`` lines of the parameters cell, typed by their literal."""
    try:
        tree = ast.parse(code)
    except SyntaxError as exc:
        raise Invalid(f"The parameters cell is not valid Python ({exc.msg}).") from None
    parameters = []
    for statement in tree.body:
        target = value = None
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
            target, value = statement.targets[0], statement.value
        elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
            target, value = statement.target, statement.value
        if not isinstance(target, ast.Name):
            raise Invalid("The parameters cell may only assign literals to names (e.g. `region = 'north'`).")
        try:
            default = ast.literal_eval(value)
        except ValueError:
            raise Invalid(f"Parameter {target.id}: its default must be a literal.") from None
        kind = _PARAMETER_TYPES.get(type(default))
        if kind is None:
            raise Invalid(f"Parameter {target.id}: use a str, int, float or bool default.")
        parameters.append(Parameter(target.id, kind, default))
    return parameters
