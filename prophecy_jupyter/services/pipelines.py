"""Notebooks become pipelines: ``pipelines/<name>/`` with ``pipeline.py``, ``pipeline.yaml`` and a
README, generated deterministically (the same notebook gives byte-identical files).

The cells that ran on the fabric, in notebook order, become functions called from ``main()``.
Names a cell assigns are module globals (declared ``global`` in its function), so state flows
from cell to cell as in the notebook. ``%%sql`` cells become ``spark.sql(...)``: with ``-o NAME``
their DataFrame is kept as ``NAME``; queries only shown are left out, like ``%%local`` cells,
other magics and cells that only display. The cell tagged ``parameters`` (papermill's
convention) becomes typed command-line and job parameters. ``%%configure`` settings become the
pipeline's engine settings.
"""

from __future__ import annotations

import ast
import itertools
import json
import keyword
import re
import shlex
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from prophecy_jupyter.errors import Invalid
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
    code runs on (the fabric kind's)."""
    name = check_name(name) if name else pipeline_name_for(path)
    runs_on = FLAVORS[flavor]
    metadata = notebook.get("metadata") or {}
    bridge = (metadata.get("kernelspec") or {}).get("name") == "prophecy"
    parameters: list[Parameter] = []
    steps: list[Step] = []
    settings: dict[str, Any] = {}
    for cell in notebook.get("cells") or []:
        if cell.get("cell_type") != "code":
            continue
        source = "".join(cell.get("source") or "")
        tags = (cell.get("metadata") or {}).get("tags") or []
        if "parameters" in tags:
            parameters = _parameters(_strip_magic_header(source))
            continue
        code = _fabric_code(source, bridge, settings, runs_on)
        if code is None:
            continue
        steps.append(Step(len(steps) + 1, code, _assigned(code, runs_on.session)))
    return Pipeline(name, path, fabric, fabric_kind, parameters, steps, settings, flavor)


def _strip_magic_header(source: str) -> str:
    first, _, rest = source.partition("\n")
    return rest if first.strip().startswith("%%") else source


def _fabric_code(source: str, bridge: bool, settings: dict[str, Any], runs_on: Flavor) -> str | None:
    """The Python a cell ran on the fabric, or None for cells that ran in the kernel."""
    stripped = source.strip()
    if not stripped:
        return None
    first, _, body = stripped.partition("\n")
    words = first.split()
    magic = words[0] if words else ""
    if magic == "%%spark":
        return _ran(body.strip(), runs_on)
    if magic == "%%sql":
        return _sql_code(first, body, runs_on)
    if magic == "%%configure":
        try:
            configured = json.loads(body or "{}")
        except ValueError:
            return None
        if isinstance(configured, dict):
            settings.update(configured)
        return None
    if magic.startswith("%") or stripped.startswith("!"):
        return None  # other magics and shell escapes run in the kernel (in the bridge kernel too)
    return _ran(stripped, runs_on) if bridge else None


def _ran(code: str, runs_on: Flavor) -> str | None:
    """A Python cell's code, or None when it only shows something."""
    return None if not code or _display_only(code, runs_on.actions) else code


def _sql_code(header: str, query: str, runs_on: Flavor) -> str | None:
    """``%%sql [-o NAME] [-p NAME[:TYPE]=VALUE]...`` as the flavor's SQL call; None for a query
    only shown."""
    query = query.strip().rstrip(";")
    if not query:
        return None
    words = shlex.split(header)[1:]
    output, parameters = None, []
    for flag, value in itertools.pairwise(words):
        if flag in ("-o", "--output"):
            output = value
        elif flag in ("-p", "--param"):
            try:
                parameters.append(SqlParameter.parse(value))
            except Invalid as exc:
                raise Invalid(f"A %%sql cell: {exc}") from None
    call = runs_on.sql(query, parameters)
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
