"""Pipeline generation rules, without a fabric: which cells become steps, how %%sql, parameters
and %%configure are carried, and that the result is valid Python that keeps the notebook's text."""

from __future__ import annotations

import ast

import pytest
import yaml

from prophecy_jupyter.errors import Invalid
from prophecy_jupyter.services.pipelines import from_notebook, pipeline_name_for


def notebook(*cells: str | tuple[str, list[str]], kernel: str = "python3") -> dict:
    built = []
    for cell in cells:
        source, tags = (cell, []) if isinstance(cell, str) else cell
        built.append({"cell_type": "code", "metadata": {"tags": tags}, "source": source, "outputs": []})
    built.insert(1, {"cell_type": "markdown", "metadata": {}, "source": "# notes"})
    return {"cells": built, "metadata": {"kernelspec": {"name": kernel}, "prophecy": {"fabric": "gw"}}}


def test_fabric_cells_become_steps_and_the_rest_is_left_out():
    pipeline = from_notebook(
        notebook(
            "%load_ext prophecy_jupyter\n%fabric attach gw",
            ("%%spark\nlimit = 10\nregion: str = 'north'", ["parameters"]),
            '%%configure\n{"conf": {"spark.sql.shuffle.partitions": "8"}}',
            '%%spark\nimport json\ntext = """\n  keep\n    this\n"""\nrows = spark.range(limit)',
            "%%spark\nrows.show()",
            "%%sql\nSELECT * FROM t",
            "%%sql -o top -p n:INT=3 -p who=ana\nSELECT :who AS who FROM range(:n)",
            "%%sql\nCREATE OR REPLACE TEMP VIEW v AS SELECT 1",
            "%%local\nprint(top)",
            "local_only = 1",
        ),
        "notebooks/Daily Orders.ipynb",
        fabric="gw",
        fabric_kind="livy",
    )
    assert pipeline.name == "daily_orders" and len(pipeline.steps) == 3
    assert [(p.name, p.type, p.default) for p in pipeline.parameters] == [
        ("limit", "int", 10),
        ("region", "str", "north"),
    ]
    files = pipeline.files()
    code = files["pipelines/daily_orders/pipeline.py"].decode()
    ast.parse(code)
    assert 'text = """\n  keep\n    this\n"""' in code, "multi-line strings keep their text"
    assert "    global spark, json, rows, text" in code
    assert "args={'n': 3, 'who': 'ana'})" in code and "top = spark.sql(" in code
    assert "CREATE OR REPLACE TEMP VIEW v" in code
    assert "rows.show()" not in code and "SELECT * FROM t" not in code and "local_only" not in code
    assert "parser.add_argument('--limit', type=int, default=10)" in code
    manifest = yaml.safe_load(files["pipelines/daily_orders/pipeline.yaml"])
    assert manifest["fabric"] == "gw" and manifest["fabric_kind"] == "livy"
    assert manifest["engine"] == {"conf": {"spark.sql.shuffle.partitions": "8"}}
    assert manifest["parameters"][0] == {"name": "limit", "type": "int", "default": 10}


def test_in_the_bridge_kernel_plain_cells_ran_on_the_fabric():
    pipeline = from_notebook(
        notebook("df = spark.range(3)", "df", "%%local\nx = 1", "print('hi')", kernel="prophecy"), "b.ipynb"
    )
    assert [s.code for s in pipeline.steps] == ["df = spark.range(3)"]


def test_bad_input_is_named():
    with pytest.raises(Invalid, match="lower-case letters"):
        from_notebook(notebook("%%spark\n1"), "x.ipynb", name="Bad Name")
    with pytest.raises(Invalid, match="only assign literals"):
        from_notebook(notebook(("%%spark\nrun(1)", ["parameters"])), "x.ipynb")
    with pytest.raises(Invalid, match="must be a literal"):
        from_notebook(notebook(("%%spark\nday = today()", ["parameters"])), "x.ipynb")
    with pytest.raises(Invalid, match="not valid Python"):
        from_notebook(notebook("%%spark\ndef broken(:\n"), "x.ipynb")
    with pytest.raises(Invalid, match="not a INT"):
        from_notebook(notebook("%%sql -o t -p n:INT=five\nSELECT :n"), "x.ipynb")
    assert pipeline_name_for("2024 report.ipynb") == "p_2024_report"


def test_for_snowpark_sql_cells_run_through_the_session_and_collect_is_work_not_display():
    cells = notebook(
        "%%spark\nsession.sql('insert into T values (1)').collect()",
        "%%spark\nsession.table('T').collect()",
        "%%sql -o totals\nselect count(*) as n from T",
        "%%sql\ncreate table U as select 1 as a",
        "%%sql\nselect * from U",
    )
    pipeline = from_notebook(cells, "snow.ipynb", flavor="snowpark")
    assert [step.code for step in pipeline.steps] == [
        "session.sql('insert into T values (1)').collect()",
        "session.table('T').collect()",
        'totals = session.sql("""\nselect count(*) as n from T\n""")',
        'session.sql("""\ncreate table U as select 1 as a\n""").collect()',
    ]
    code = pipeline.files()["pipelines/snow/pipeline.py"].decode()
    assert "def main(session_):" in code and "from snowflake.snowpark import Session" in code
    assert code.endswith('if __name__ == "__main__":\n    run_from_command_line()\n')
    compile(code, "pipeline.py", "exec")
    spark = from_notebook(cells, "snow.ipynb")
    assert [step.code for step in spark.steps][-1] == 'spark.sql("""\ncreate table U as select 1 as a\n""")'
    bound = from_notebook(
        notebook("%%sql -o t -p n:int=1 -p s=x\nselect :n, x::n, ':s', :s"), "p.ipynb", flavor="snowpark"
    )
    assert [step.code for step in bound.steps] == [
        "t = session.sql(\"\"\"\nselect ?, x::n, ':s', ?\n\"\"\", params=[('FIXED', 1), ('TEXT', 'x')])"
    ]
    with pytest.raises(Invalid, match="A %%sql cell: SQL parameter s is not used in the query"):
        from_notebook(notebook("%%sql -p s=x\nselect ':s'"), "p.ipynb", flavor="snowpark")
