"""Generated pipelines escape everything they embed: a hostile notebook name, parameter defaults
and SQL values end up as data in ``pipeline.py``, never as code that runs when it is imported, and
values such as ``1e999`` stay the values they were."""

from __future__ import annotations

import ast
import json
import subprocess
import sys

import pytest

from prophecy_jupyter.services.pipelines import from_notebook

MARKER = "prophecy-pwned"
HOSTILE_NAMES = [
    'orders"""; __import__("pathlib").Path("MARKER").touch(); """.ipynb',
    'orders\\"""\n__import__("pathlib").Path("MARKER").touch()\n""".ipynb',
    'orders\r__import__("pathlib").Path("MARKER").touch()#.ipynb',
    "orders\u2028\x0c\x00.ipynb",
]


def notebook() -> dict:
    cells = [
        {
            "cell_type": "code",
            "metadata": {"tags": ["parameters"]},
            "source": 'big = 1e999\nsmall = -1e999\nnote = \'"""; import os  # \\\\\'\nlimit = 10',
        },
        {"cell_type": "code", "metadata": {}, "source": "%%spark\nrows = spark.range(limit)"},
        {"cell_type": "code", "metadata": {}, "source": "%%sql -o huge -p r:DOUBLE=1e999\nSELECT :r AS r"},
        {"cell_type": "code", "metadata": {}, "source": '%%sql -o odd\nSELECT """x\x00""" AS y'},
    ]
    return {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_a_hostile_notebook_name_stays_text(tmp_path, name):
    path = name.replace("MARKER", str(tmp_path / MARKER))
    files = from_notebook(notebook(), path, name="orders").files()
    code = files["pipelines/orders/pipeline.py"].decode()
    module = tmp_path / "pipeline.py"
    module.write_text(code)
    # importing the pipeline (as a scheduler or a test would) runs no payload
    check = (
        "import importlib.util, json, math, sys;"
        f"spec = importlib.util.spec_from_file_location('pipeline', {str(module)!r});"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m);"
        "a = m.parse_args([]);"
        "print(json.dumps([m.__doc__, repr(a.big), repr(a.small), a.note, repr(m.big)]))"
    )
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=120)
    assert not (tmp_path / MARKER).exists(), "the notebook's name ran as code"
    assert done.returncode == 0, done.stderr[-2000:]
    doc, big, small, note, module_big = json.loads(done.stdout)
    assert doc.startswith(f"Pipeline orders, generated from {path} by prophecy-jupyter.")
    assert (big, small, module_big) == ("inf", "-inf", "inf")
    assert note == '"""; import os  # \\'
    tree = ast.parse(code)
    assert ast.get_docstring(tree).startswith(f"Pipeline orders, generated from {path}")
    assert "float('inf')" in code and "float('-inf')" in code
    assert "'r': float('inf')" in code, "a SQL value of 1e999 is the float it was"
    readme = files["pipelines/orders/README.md"].decode()
    assert '--note \'"""; import os  # \\\'' in readme, "shell-quoted in the README's command line"
