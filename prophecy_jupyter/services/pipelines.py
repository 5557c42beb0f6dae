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
import io
import itertools
import json
import keyword
import re
import shlex
import tokenize
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

import yaml

from prophecy_jupyter.errors import Invalid
from prophecy_jupyter.results.transport import parameter_literal, python_literal
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

    def files(self) -> dict[str, bytes]:
        """Path under the project → content, for ``pipelines/<name>/``."""
        folder = f"pipelines/{self.name}"
        return {
            f"{folder}/pipeline.py": _render_code(self).encode(),
            f"{folder}/pipeline.yaml": _render_manifest(self).encode(),
            f"{folder}/README.md": _render_readme(self).encode(),
        }


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
) -> Pipeline:
    """The pipeline of a notebook (its JSON), named ``name`` or after the notebook file;
    ``fabric`` and ``fabric_kind`` say where the notebook ran, when known."""
    name = check_name(name) if name else pipeline_name_for(path)
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
        code = _fabric_code(source, bridge, settings)
        if code is None or _display_only(code):
            continue
        steps.append(Step(len(steps) + 1, code, _assigned(code)))
    return Pipeline(name, path, fabric, fabric_kind, parameters, steps, settings)


def _strip_magic_header(source: str) -> str:
    first, _, rest = source.partition("\n")
    return rest if first.strip().startswith("%%") else source


def _fabric_code(source: str, bridge: bool, settings: dict[str, Any]) -> str | None:
    """The Python a cell ran on the fabric, or None for cells that ran in the kernel."""
    stripped = source.strip()
    if not stripped:
        return None
    first, _, body = stripped.partition("\n")
    words = first.split()
    magic = words[0] if words else ""
    if magic == "%%spark":
        return body.strip() or None
    if magic == "%%sql":
        return _sql_code(first, body)
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
    return stripped if bridge else None


def _sql_code(header: str, query: str) -> str | None:
    """``%%sql [-o NAME] [-p NAME[:TYPE]=VALUE]...`` as ``spark.sql``; None for a query only shown."""
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
    args = ", ".join(f"{p.name!r}: {parameter_literal(p)}" for p in parameters)
    call = f"spark.sql({_triple_quoted(query)}" + (f", args={{{args}}})" if args else ")")
    if output and output.isidentifier() and not keyword.iskeyword(output):
        return f"{output} = {call}"
    return None if _SHOWN_SQL.match(query) else call


def _triple_quoted(text: str) -> str:
    """A string literal for ``text``: readable triple quotes when that is safe, else ``repr``."""
    plain = all(ch.isprintable() or ch in "\n\t" for ch in text)
    if plain and '"""' not in text and not text.endswith('"') and "\\" not in text:
        return f'"""\n{text}\n"""'
    return repr(text)


def _in_docstring(text: str) -> str:
    """``text`` as it may stand inside our triple-quoted docstring: quotes, backslashes and line
    breaks escaped, so it can never end the string."""
    escaped = []
    for ch in text:
        if ch in '\\"':
            escaped.append("\\" + ch)
        elif ch.isprintable():
            escaped.append(ch)
        else:
            escaped.append(ch.encode("unicode_escape").decode("ascii"))
    return "".join(escaped)


def _display_only(code: str) -> bool:
    """Cells that only show something: bare names, or calls such as ``df.show()``."""
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
            if called in _DISPLAY_CALLS:
                continue
        return False
    return True


def _assigned(code: str) -> list[str]:
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
    return sorted(names - {"spark"})


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


# -- rendering ---------------------------------------------------------------------------------


def _render_code(pipeline: Pipeline) -> str:
    source = _in_docstring(pipeline.notebook)
    lines = [
        f'"""Pipeline {pipeline.name}, generated from {source} by prophecy-jupyter.',
        "",
        "Run it with `spark-submit pipeline.py [--PARAM VALUE ...]` or",
        f"`jupyter prophecy pipeline run {pipeline.name} --fabric FABRIC`.",
        '"""',
        "",
        "import argparse",
        "",
        "from pyspark.sql import SparkSession",
        "",
        "spark = None",
    ]
    if any(p.type == "bool" for p in pipeline.parameters):
        lines += [
            "",
            "",
            "def _flag(text):",
            "    return text.strip().lower() in ('1', 'true', 'yes', 'on')",
            "",
        ]
    for parameter in pipeline.parameters:
        lines.append(f"{parameter.name} = {python_literal(parameter.default)}")
    for step in pipeline.steps:
        lines += ["", "", f"def step_{step.index}():"]
        declared = ["spark", *step.assigned]
        lines.append(f"    global {', '.join(declared)}")
        lines += _indented(step.code)
    lines += [
        "",
        "",
        "def parse_args(argv=None):",
        f"    parser = argparse.ArgumentParser(description={f'Pipeline {pipeline.name}'!r})",
    ]
    for parameter in pipeline.parameters:
        kind = "_flag" if parameter.type == "bool" else parameter.type
        default = python_literal(parameter.default)
        lines.append(f"    parser.add_argument('--{parameter.name}', type={kind}, default={default})")
    lines += [
        "    return parser.parse_args(argv)",
        "",
        "",
        "def main(argv=None):",
        f"    global {', '.join(['spark', *[p.name for p in pipeline.parameters]])}",
        "    args = parse_args(argv)",
    ]
    lines += [f"    {p.name} = args.{p.name}" for p in pipeline.parameters]
    lines.append(f"    spark = SparkSession.builder.appName({pipeline.name!r}).getOrCreate()")
    lines += [f"    step_{step.index}()" for step in pipeline.steps]
    lines += ["", "", 'if __name__ == "__main__":', "    main()", ""]
    return "\n".join(lines)


def _indented(code: str) -> list[str]:
    """The code's lines indented one level, except lines inside multi-line strings (kept as is)."""
    inside: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(code).readline):
        if token.type == tokenize.STRING and token.end[0] > token.start[0]:
            inside.update(range(token.start[0] + 1, token.end[0] + 1))
    return [
        line if number in inside else (f"    {line}" if line.strip() else "")
        for number, line in enumerate(code.splitlines(), start=1)
    ]


def _render_manifest(pipeline: Pipeline) -> str:
    manifest = {
        "name": pipeline.name,
        "source": pipeline.notebook,
        "fabric": pipeline.fabric,
        "fabric_kind": pipeline.fabric_kind,
        "entrypoint": "pipeline.py",
        "parameters": [{"name": p.name, "type": p.type, "default": p.default} for p in pipeline.parameters],
        "engine": pipeline.settings,
        "steps": len(pipeline.steps),
    }
    return yaml.safe_dump(manifest, sort_keys=False, default_flow_style=False)


def _render_readme(pipeline: Pipeline) -> str:
    usage = " ".join(f"--{p.name} {shlex.quote(str(p.default))}" for p in pipeline.parameters)
    parameters = "\n".join(f"- `{p.name}` ({p.type}, default `{p.default!r}`)" for p in pipeline.parameters)
    return (
        f"# Pipeline `{pipeline.name}`\n\n"
        f"Generated from `{pipeline.notebook}`: the {len(pipeline.steps)} cell(s) that ran on the fabric, "
        "in order. Regenerate it from the notebook rather than editing it by hand.\n\n"
        "## Run\n\n"
        f"```bash\nspark-submit pipeline.py {usage}\n"
        f"jupyter prophecy pipeline run {pipeline.name} --fabric FABRIC\n```\n\n"
        "## Parameters\n\n" + (parameters or "None.") + "\n"
    )
