"""The gateway's Python REPL: Livy's statement semantics, without Spark."""

from __future__ import annotations

import datetime
import decimal

import pytest

from prophecy_jupyter.gateway.repl import TABLE_MIME, PythonRepl, table_output


@pytest.fixture
def repl():
    return PythonRepl()


def test_trailing_expression_is_printed_after_stdout(repl):
    out = repl.execute("x = 40\nprint('hello')\nx + 2")
    assert out == {"status": "ok", "data": {"text/plain": "hello\n42"}}


def test_state_is_kept_and_none_is_not_printed(repl):
    repl.execute("def twice(v):\n    return v * 2")
    assert repl.execute("twice(21)")["data"]["text/plain"] == "42"
    assert repl.execute("None")["data"]["text/plain"] == ""


def test_errors_have_name_value_and_a_traceback_without_repl_frames(repl):
    out = repl.execute("def f():\n    raise KeyError('k')\nf()")
    assert out["status"] == "error" and out["ename"] == "KeyError" and out["evalue"] == "'k'"
    text = "".join(out["traceback"])
    assert text.startswith("Traceback (most recent call last):")
    assert "raise KeyError('k')" in text and "repl.py" not in text


def test_syntax_errors_and_exit_are_reported(repl):
    syntax = repl.execute("def broken(:\n  pass")
    assert syntax["status"] == "error" and syntax["ename"] == "SyntaxError"
    exited = repl.execute("import sys\nsys.exit(3)")
    assert exited["status"] == "error" and "exit(3)" in exited["evalue"]


def test_keyboard_interrupt_reaches_the_caller(repl):
    with pytest.raises(KeyboardInterrupt):
        repl.execute("raise KeyboardInterrupt")


def test_output_magics(repl):
    assert repl.execute("v = {'a': 1}\n%json v")["data"]["application/json"] == {"a": 1}
    table = repl.execute("rows = [(1, 'x'), (2, None)]\n%table rows")["data"][TABLE_MIME]
    assert table == {
        "headers": [{"name": "0", "type": "INT_TYPE"}, {"name": "1", "type": "STRING_TYPE"}],
        "data": [[1, "x"], [2, None]],
    }
    unknown = repl.execute("%html '<b>'")
    assert unknown["status"] == "error" and unknown["ename"] == "UnknownMagic"


def test_table_output_types_and_mixing():
    rows = [{"d": datetime.date(2024, 1, 2), "m": decimal.Decimal("1.5"), "b": True}]
    assert table_output(rows) == {
        "headers": [
            {"name": "d", "type": "DATE_TYPE"},
            {"name": "m", "type": "DECIMAL_TYPE"},
            {"name": "b", "type": "BOOLEAN_TYPE"},
        ],
        "data": [["2024-01-02", "1.5", True]],
    }
    with pytest.raises(TypeError, match="mixes types"):
        table_output([[1], ["a"]])


def test_completion(repl):
    repl.execute("prophecy_answer = 42\nimport json")
    assert "prophecy_answer" in repl.complete("x = prophecy_a", 14)
    assert "json.dumps(" in repl.complete("json.du", 7)
