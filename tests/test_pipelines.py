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


def test_a_notebook_whose_cells_run_on_several_fabrics_is_refused_with_which_cell_runs_where():
    cells = notebook(
        "%%spark\nrows = spark.range(3)",
        "%%spark -f local\nsmall = spark.range(1)",
        "%%sql --fabric warehouse -o totals\nselect count(*) from t",
        "%%spark --fabric=local\nmore = spark.range(2)",
        "%%send -i df -f warehouse -n df",
        "%%spark -f warehouse\ntotals.show()",
        "%%sql -f warehouse\nselect * from t",
    )
    with pytest.raises(Invalid) as refused:
        from_notebook(cells, "multi.ipynb", fabric="data-team/gw", fabric_kind="livy")
    assert str(refused.value) == (
        "This notebook runs cells on several fabrics, and a pipeline runs on one: cell 1 runs on "
        "'data-team/gw'; cells 3, 5 run on 'local'; cell 4 runs on 'warehouse'; cell 6 sends local "
        "data to 'warehouse' (%%send). Split it into one notebook per fabric, or move those cells to "
        "%%local. The data a cell sends exists only in the kernel: write it where the fabric reads it "
        "(a table or a file) and read it there instead."
    ), "cells only shown (7, 8) are not the pipeline's, and cell numbers count every cell (2 is markdown)"
    assert refused.value.field == "notebook"
    with pytest.raises(
        Invalid, match=r"several fabrics.*: cell 1 runs on 'gw'; cell 3 runs on 'warehouse'\."
    ):
        from_notebook(notebook("%%spark\na = 1", "%%spark -f warehouse\nb = 2"), "m.ipynb")
    unknown = notebook("%%spark\na = 1", "%%spark -f warehouse\nb = 2")
    del unknown["metadata"]["prophecy"]
    with pytest.raises(Invalid, match="cell 1 runs on the notebook's fabric; cell 3 runs on 'warehouse'"):
        from_notebook(unknown, "m.ipynb")
    with pytest.raises(Invalid, match=r"on the notebook's fabric, 'gw', .*cell 1 runs on 'warehouse'\. Make"):
        from_notebook(notebook("%%spark -f warehouse\na = 1"), "m.ipynb")
    with pytest.raises(Invalid, match="cell 3 runs on 'warehouse'"):
        from_notebook(notebook("a = 1", "%%fabric warehouse\nb = 2", kernel="prophecy"), "m.ipynb")


def test_data_sent_from_the_kernel_is_refused_even_on_one_fabric():
    for send in (
        "%%send -i df",
        "%%send -i df --fabric gw -n orders --view",
        "%%send_to_spark -i df -t df -n d",
    ):
        magic = send.split()[0]
        with pytest.raises(Invalid) as refused:
            from_notebook(
                notebook("%%spark\na = 1", "import pandas\ndf = pandas.DataFrame()", send), "s.ipynb"
            )
        assert str(refused.value).startswith(
            "This notebook sends data from the kernel to a fabric, which a pipeline cannot do: cell 1 runs "
            f"on 'gw'; cell 4 sends local data to 'gw' ({magic}). The data a cell sends exists only in the "
            "kernel"
        )
    with pytest.raises(Invalid, match=r"cell 1 sends local data to 'gw' \(%send\)"):
        from_notebook(notebook("df = make()\n%send -i df"), "s.ipynb")
    with pytest.raises(Invalid, match=r"cell 1 sends local data to 'warehouse' \(%%send\)"):
        from_notebook(notebook("%%send -i df -f warehouse\n"), "s.ipynb")


def test_a_fabric_option_naming_the_notebook_s_fabric_changes_nothing():
    plain = [
        ("%%spark\nlimit = 10", ["parameters"]),
        '%%configure\n{"conf": {"spark.sql.shuffle.partitions": "8"}}',
        "%%spark -o local_rows -n 5\nrows = spark.range(limit)",
        "%%sql -q -o top -p n:INT=3\nSELECT id FROM range(:n)",
        "%%sql\nCREATE TEMP VIEW v AS SELECT 1",
        "%%spark\nrows.show()",
    ]
    flagged = [
        ("%%spark -f gw\nlimit = 10", ["parameters"]),
        '%%configure -f data-team/gw\n{"conf": {"spark.sql.shuffle.partitions": "8"}}',
        "%%spark -o local_rows -f gw -n 5\nrows = spark.range(limit)",
        "%%sql -q --fabric data-team/gw -o top -p n:INT=3\nSELECT id FROM range(:n)",
        "%%sql --fabric=gw\nCREATE TEMP VIEW v AS SELECT 1",
        "%%spark -f warehouse\nrows.show()",  # only shown: not the pipeline's, wherever it ran
    ]
    expected = from_notebook(notebook(*plain), "orders.ipynb", fabric="data-team/gw", fabric_kind="livy")
    same = from_notebook(notebook(*flagged), "orders.ipynb", fabric="data-team/gw", fabric_kind="livy")
    assert same.files() == expected.files() and len(same.steps) == 3
    assert same.settings == {"conf": {"spark.sql.shuffle.partitions": "8"}}
    assert "top = spark.sql(" in same.files()["pipelines/orders/pipeline.py"].decode()
    assert (
        from_notebook(notebook(*flagged), "orders.ipynb").files()
        == from_notebook(notebook(*plain), "orders.ipynb").files()
    ), "without the caller's fabric, the metadata's ('gw') is the notebook's"
    configured = from_notebook(
        notebook(
            '%%configure -f\n{"driverMemory": "2g"}',
            '%%configure --force\n{"size": "M"}',
            '%%configure -f warehouse\n{"conf": {"a": "b"}}',
            "%%spark\nx = 1",
        ),
        "c.ipynb",
    )
    assert configured.settings == {"driverMemory": "2g", "size": "M"}, (
        "-f alone is force; another fabric's stay out"
    )
    unknown = notebook("%%spark -f warehouse\na = 1", "%%sql -f warehouse\ncreate table t as select 1")
    del unknown["metadata"]["prophecy"]
    assert len(from_notebook(unknown, "u.ipynb").steps) == 2, "one named fabric, the notebook's not known"
    with pytest.raises(Invalid, match=r"Cell 1: `%%sql -o` does not parse \(argument -o/--output"):
        from_notebook(notebook("%%sql -o\ncreate table t as select 1"), "x.ipynb")


def test_in_the_bridge_kernel_a_fabric_header_names_the_cell_s_fabric():
    cells = notebook(
        "%%fabric gw\ndf = spark.range(3)",
        "more = df.count()",
        "%%fabric\nx = 1",
        "%%fabric gw\ndf",
        kernel="prophecy",
    )
    pipeline = from_notebook(cells, "b.ipynb", fabric="data-team/gw")
    assert [s.code for s in pipeline.steps] == ["df = spark.range(3)", "more = df.count()", "x = 1"]
    cells = notebook("df = spark.range(3)", "%%fabric warehouse\nrows = spark.table('t')", kernel="prophecy")
    with pytest.raises(Invalid, match="cell 1 runs on 'gw'; cell 3 runs on 'warehouse'"):
        from_notebook(cells, "b.ipynb")
