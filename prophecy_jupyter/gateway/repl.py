"""A Python read-eval-print loop with Livy's statement semantics.

Code runs in one namespace per session. The value of a trailing expression is printed, as in
an interactive shell; stdout and stderr become the statement's ``text/plain``. Lines that start
with ``%json``, ``%table`` or ``%matplot`` are Livy's output magics.
"""

from __future__ import annotations

import ast
import base64
import contextlib
import datetime
import decimal
import io
import itertools
import json
import linecache
import re
import rlcompleter
import sys
import traceback
from typing import Any

TABLE_MIME = "application/vnd.livy.table.v1+json"
_MAGIC = re.compile(r"^%(\w+)\s*(.*)$")
_TOKEN_BEFORE_CURSOR = re.compile(r"[\w.]*$")


class UnknownMagic(Exception):
    """A ``%name`` line that Livy does not define."""


def ok_output(data: dict[str, Any]) -> dict[str, Any]:
    """A Livy ``ok`` output (without ``execution_count``, which the gateway adds)."""
    return {"status": "ok", "data": data}


def error_output(exc: BaseException, hide_frames_from: str | None = None) -> dict[str, Any]:
    """A Livy ``error`` output with the remote traceback, minus the REPL's own frames."""
    frames = traceback.extract_tb(exc.__traceback__)
    frames = [f for f in frames if hide_frames_from is None or f.filename != hide_frames_from]
    lines = ["Traceback (most recent call last):\n"] if frames else []
    lines += traceback.format_list(frames)
    lines += traceback.format_exception_only(type(exc), exc)
    return {
        "status": "error",
        "ename": type(exc).__name__,
        "evalue": str(exc),
        "traceback": lines,
    }


class PythonRepl:
    """Runs statements in one namespace and produces Livy outputs."""

    def __init__(self, namespace: dict[str, Any] | None = None):
        self.namespace: dict[str, Any] = namespace if namespace is not None else {}
        self.namespace.setdefault("__name__", "__main__")
        self._counter = itertools.count()

    def execute(self, code: str) -> dict[str, Any]:
        """Run ``code``; return its Livy output. KeyboardInterrupt propagates to the caller."""
        buffer = io.StringIO()
        data: dict[str, Any] = {}
        try:
            with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
                for is_magic, chunk in _split_magics(code):
                    if is_magic:
                        data = self._run_magic(chunk)
                    else:
                        self._run_python(chunk)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            if isinstance(exc, SystemExit):
                exc = RuntimeError(f"the code called exit({exc.code}); the session stays up")
            return error_output(exc, hide_frames_from=__file__)
        text = buffer.getvalue().rstrip()
        return ok_output({"text/plain": text, **data})

    def complete(self, code: str, cursor: int) -> list[str]:
        """Completion candidates for the word before ``cursor``."""
        token = _TOKEN_BEFORE_CURSOR.search(code[: max(0, cursor)]).group(0)
        completer = rlcompleter.Completer(self.namespace)
        candidates: list[str] = []
        for state in itertools.count():
            try:
                candidate = completer.complete(token, state)
            except Exception:
                break
            if candidate is None or len(candidates) >= 500:
                break
            candidates.append(candidate)
        return sorted(set(candidates))

    def _run_python(self, code: str) -> None:
        filename = f"<statement-{next(self._counter)}>"
        linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
        tree = ast.parse(code, filename=filename, mode="exec")
        if not tree.body:
            return
        *body, last = tree.body
        if body:
            module = ast.Module(body=body, type_ignores=[])
            exec(compile(module, filename, "exec"), self.namespace)
        if isinstance(last, ast.Expr):
            interactive = ast.Interactive(body=[last])
            with _display_hook():
                exec(compile(interactive, filename, "single"), self.namespace)
        else:
            module = ast.Module(body=[last], type_ignores=[])
            exec(compile(module, filename, "exec"), self.namespace)

    def _run_magic(self, line: str) -> dict[str, Any]:
        match = _MAGIC.match(line.strip())
        name, expression = (match.group(1), match.group(2)) if match else ("", line)
        if name not in ("json", "table", "matplot"):
            raise UnknownMagic(f"Unknown magic command '%{name}'; Livy knows %json, %table, %matplot")
        value = eval(expression, self.namespace)
        if name == "json":
            return {"application/json": json.loads(json.dumps(value))}
        if name == "table":
            return {TABLE_MIME: table_output(value)}
        return {"image/png": _figure_png(value)}


def _split_magics(code: str) -> list[tuple[bool, str]]:
    """Split code into Python chunks and magic lines, in order."""
    chunks: list[tuple[bool, str]] = []
    pending: list[str] = []
    for line in code.splitlines():
        if line.startswith("%"):
            if pending:
                chunks.append((False, "\n".join(pending)))
                pending = []
            chunks.append((True, line))
        else:
            pending.append(line)
    if pending and any(p.strip() for p in pending):
        chunks.append((False, "\n".join(pending)))
    return chunks


@contextlib.contextmanager
def _display_hook():
    """Print the repr of a trailing expression, like an interactive shell."""

    def hook(value: Any) -> None:
        if value is not None:
            print(repr(value))

    previous, sys.displayhook = sys.displayhook, hook
    try:
        yield
    finally:
        sys.displayhook = previous


_TABLE_TYPES: list[tuple[type, str]] = [
    (bool, "BOOLEAN_TYPE"),
    (int, "INT_TYPE"),
    (float, "DOUBLE_TYPE"),
    (str, "STRING_TYPE"),
    (datetime.datetime, "TIMESTAMP_TYPE"),
    (datetime.date, "DATE_TYPE"),
    (decimal.Decimal, "DECIMAL_TYPE"),
    (dict, "MAP_TYPE"),
    (list, "ARRAY_TYPE"),
    (tuple, "ARRAY_TYPE"),
]


def _table_type(value: Any) -> str:
    if value is None:
        return "NULL_TYPE"
    for cls, name in _TABLE_TYPES:
        if isinstance(value, cls):
            return name
    raise TypeError(f"%table cannot show a value of type {type(value).__name__}")


def _table_value(value: Any) -> Any:
    if isinstance(value, (datetime.date, decimal.Decimal)):
        return str(value)
    return value


def table_output(rows: Any) -> dict[str, Any]:
    """Livy's ``%table`` output: headers with a type each, and rows of values."""
    rows = list(rows)
    if not rows:
        return {"headers": [], "data": []}
    if isinstance(rows[0], dict):
        names = list(rows[0])
        records = [[row.get(name) for name in names] for row in rows]
    else:
        names = [str(i) for i in range(len(rows[0]))]
        records = [list(row) for row in rows]
    headers = []
    for column, name in enumerate(names):
        types = {_table_type(r[column]) for r in records} - {"NULL_TYPE"}
        if len(types) > 1:
            raise TypeError(f"%table column {name!r} mixes types {sorted(types)}")
        headers.append({"name": name, "type": types.pop() if types else "NULL_TYPE"})
    return {"headers": headers, "data": [[_table_value(v) for v in r] for r in records]}


def _figure_png(value: Any) -> str:
    figure = value.gcf() if hasattr(value, "gcf") else value
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    if hasattr(value, "close"):
        value.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()
