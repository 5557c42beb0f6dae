"""How a pipeline's files are written, for what its code runs on (a SparkSession, a Snowpark
session): the one place where the generated code differs between them. The same pipeline always
gives byte-identical files."""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import yaml

from prophecy_jupyter.errors import Invalid
from prophecy_jupyter.results.transport import parameter_literal, python_literal, snowflake_bindings
from prophecy_jupyter.services.python_text import in_docstring, indented, triple_quoted
from prophecy_jupyter.sql_parameters import SqlParameter, qmark_query


class RenderedPipeline(Protocol):
    """What rendering a pipeline's file reads of it."""

    name: str
    notebook: str
    fabric: str | None
    fabric_kind: str | None
    parameters: Sequence[Any]
    steps: Sequence[Any]
    settings: dict[str, Any]
    flavor: str


@dataclass(frozen=True)
class Flavor:
    """What a pipeline's code runs on."""

    session: str
    """The name cells use for the session (``spark``, ``session``)."""
    sql: Callable[[str, list[SqlParameter]], str]
    """A SQL cell's query and parameters as the expression of its DataFrame."""
    execute: str
    """What a statement's DataFrame needs to run (``.collect()`` where DataFrames are lazy)."""
    render: Callable[[Any], str]
    """The pipeline's ``pipeline.py``."""
    guard: str
    """How ``pipeline.py`` ends: its command-line entry, which a session run replaces."""
    entry: str
    """The call that runs the pipeline in a session of the fabric (``{args!r}``: its arguments)."""
    command: str
    """How the file runs on its own."""
    actions: frozenset[str] = frozenset()
    """Calls that do work even as bare statements (not only show something): kept as steps."""


def files(pipeline: RenderedPipeline) -> dict[str, bytes]:
    """Path under the project → content, for ``pipelines/<name>/``."""
    folder = f"pipelines/{pipeline.name}"
    return {
        f"{folder}/pipeline.py": FLAVORS[pipeline.flavor].render(pipeline).encode(),
        f"{folder}/pipeline.yaml": _render_manifest(pipeline).encode(),
        f"{folder}/README.md": _render_readme(pipeline).encode(),
    }


def _render_spark(pipeline: RenderedPipeline) -> str:
    how = ["Run it with `spark-submit pipeline.py [--PARAM VALUE ...]` or"]
    lines = _head(pipeline, how, ["import argparse"], "from pyspark.sql import SparkSession")
    lines += ["spark = None", *_body(pipeline, "spark"), *_parse_args(pipeline)]
    lines += [
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


def _render_snowpark(pipeline: RenderedPipeline) -> str:
    how = [
        "Run it with `python pipeline.py [--connection NAME | --local-testing] [--PARAM VALUE ...]` (NAME: a",
        "connection of connections.toml; --local-testing: Snowpark's local testing, no account), as a",
        "stored procedure with handler `main`, or with",
    ]
    lines = _head(pipeline, how, ["import argparse", "import sys"], "from snowflake.snowpark import Session")
    lines += ['session = globals().get("session")  # main() sets it; a session of the fabric has one already']
    lines += _body(pipeline, "session")
    connection = (
        "    parser.add_argument('--connection', default=None, help='A connection of connections.toml "
        "(default: the default connection).')"
    )
    local = (
        "    parser.add_argument('--local-testing', action='store_true', help=\"Run on Snowpark's local "
        'testing (DataFrames only, no account).")'
    )
    lines += _parse_args(pipeline, [connection, local])
    names = [p.name for p in pipeline.parameters]
    defaults = [f"{p.name}={python_literal(p.default)}" for p in pipeline.parameters]
    signature = ", ".join(["session_", *defaults])
    values = ", ".join(f"args.{name}" for name in names)
    passed = f"session_, {values}" if values else "session_"
    lines += [
        "",
        "",
        f"def main({signature}):",
        '    """Run the pipeline on a Snowpark session (a stored procedure\'s handler)."""',
        "    globals().update(session=session_" + "".join(f", {n}={n}" for n in names) + ")",
        *[f"    step_{step.index}()" for step in pipeline.steps],
        f"    return {f'Pipeline {pipeline.name} ran {len(pipeline.steps)} step(s).'!r}",
        "",
        "",
        "def run_in_session(session_, argv=None):",
        '    """Run with command-line arguments on an open session."""',
        "    args = parse_args(argv)",
        f"    return main({passed})",
        "",
        "",
        "def run_from_command_line(argv=None):",
        "    args = parse_args(argv)",
        "    builder = Session.builder",
        "    if args.local_testing:",
        "        builder = builder.config('local_testing', True)",
        "    elif args.connection:",
        "        builder = builder.config('connection_name', args.connection)",
        "    session_ = builder.create()",
        "    try:",
        f"        print(main({passed}))",
        "    finally:",
        "        try:",
        "            session_.close()",
        "        except Exception as exc:  # the work is done; say why the session did not close",
        "            print(f'note: the session did not close cleanly: {exc}', file=sys.stderr)",
        "",
        "",
        'if __name__ == "__main__":',
        "    run_from_command_line()",
        "",
    ]
    return "\n".join(lines)


def _head(pipeline: RenderedPipeline, how: list[str], imports: list[str], session_import: str) -> list[str]:
    """The module's docstring (how to run it) and imports."""
    source = in_docstring(pipeline.notebook)
    return [
        f'"""Pipeline {pipeline.name}, generated from {source} by prophecy-jupyter.',
        "",
        *how,
        f"`jupyter prophecy pipeline run {pipeline.name} --fabric FABRIC`.",
        '"""',
        "",
        *imports,
        "",
        session_import,
        "",
    ]


def _body(pipeline: RenderedPipeline, session: str) -> list[str]:
    """The parameters with their defaults, and one function per step; the names a step binds are
    module globals, so state flows from step to step as from cell to cell."""
    lines: list[str] = []
    if any(p.type == "bool" for p in pipeline.parameters):
        flag = "    return text.strip().lower() in ('1', 'true', 'yes', 'on')"
        lines += ["", "", "def _flag(text):", flag, ""]
    lines += [f"{p.name} = {python_literal(p.default)}" for p in pipeline.parameters]
    for step in pipeline.steps:
        lines += ["", "", f"def step_{step.index}():", f"    global {', '.join([session, *step.assigned])}"]
        lines += indented(step.code)
    return lines


def _parse_args(pipeline: RenderedPipeline, more: Sequence[str] = ()) -> list[str]:
    lines = [
        "",
        "",
        "def parse_args(argv=None):",
        f"    parser = argparse.ArgumentParser(description={f'Pipeline {pipeline.name}'!r})",
        *more,
    ]
    for parameter in pipeline.parameters:
        kind = "_flag" if parameter.type == "bool" else parameter.type
        default = python_literal(parameter.default)
        lines.append(f"    parser.add_argument('--{parameter.name}', type={kind}, default={default})")
    lines.append("    return parser.parse_args(argv)")
    return lines


def _render_manifest(pipeline: RenderedPipeline) -> str:
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


def _render_readme(pipeline: RenderedPipeline) -> str:
    usage = " ".join(f"--{p.name} {shlex.quote(str(p.default))}" for p in pipeline.parameters)
    parameters = "\n".join(f"- `{p.name}` ({p.type}, default `{p.default!r}`)" for p in pipeline.parameters)
    return (
        f"# Pipeline `{pipeline.name}`\n\n"
        f"Generated from `{pipeline.notebook}`: the {len(pipeline.steps)} cell(s) that ran on the fabric, "
        "in order. Regenerate it from the notebook rather than editing it by hand.\n\n"
        "## Run\n\n"
        f"```bash\n{FLAVORS[pipeline.flavor].command} {usage}\n"
        f"jupyter prophecy pipeline run {pipeline.name} --fabric FABRIC\n```\n\n"
        "## Parameters\n\n" + (parameters or "None.") + "\n"
    )


def _spark_sql(query: str, parameters: list[SqlParameter]) -> str:
    args = ", ".join(f"{p.name!r}: {parameter_literal(p)}" for p in parameters)
    return f"spark.sql({triple_quoted(query)}" + (f", args={{{args}}})" if args else ")")


def _snowpark_sql(query: str, parameters: list[SqlParameter]) -> str:
    if not parameters:
        return f"session.sql({triple_quoted(query)})"
    try:
        text, bound = qmark_query(query, parameters)
    except Invalid as exc:
        raise Invalid(f"A %%sql cell: {exc}", "parameters") from None
    return f"session.sql({triple_quoted(text)}, params={snowflake_bindings(bound)})"


FLAVORS: dict[str, Flavor] = {
    "spark": Flavor(
        session="spark",
        sql=_spark_sql,
        execute="",
        render=_render_spark,
        guard='\n\nif __name__ == "__main__":\n    main()\n',
        entry="main({args!r})",
        command="spark-submit pipeline.py",
    ),
    "snowpark": Flavor(
        session="session",
        sql=_snowpark_sql,
        execute=".collect()",
        render=_render_snowpark,
        guard='\n\nif __name__ == "__main__":\n    run_from_command_line()\n',
        entry="print(run_in_session(session, {args!r}))",
        command="python pipeline.py --connection NAME",
        actions=frozenset({"collect"}),  # how Snowpark runs SQL statements
    ),
}
