"""Results: Livy outputs as Result, Spark schemas as dtypes, and how results are shown."""

from __future__ import annotations

import base64
import datetime
import decimal

import pandas as pd
import pytest

from prophecy_jupyter.engines.livy import output_to_result
from prophecy_jupyter.results.display import as_json, as_text, mime_bundle, remote_error
from prophecy_jupyter.results.frames import frame_from_rows
from prophecy_jupyter.results.model import Result, ResultKind
from prophecy_jupyter.results.schema import Column, pandas_dtype


@pytest.mark.parametrize(
    "spark_type,nullable,expected",
    [
        ("integer", False, "int32"),
        ("integer", True, "Int32"),
        ("long", True, "Int64"),
        ("byte", False, "int8"),
        ("double", False, "float64"),
        ("float", True, "Float32"),
        ("boolean", False, "bool"),
        ("boolean", True, "boolean"),
        ("decimal(10,2)", True, "decimal128(10, 2)[pyarrow]"),
        ("decimal(38, 18)", True, "decimal128(38, 18)[pyarrow]"),
        ("string", True, "string"),
        ("varchar(5)", True, "string"),
        ("date", True, "date32[day][pyarrow]"),
        ("timestamp_ntz", True, "datetime64[us]"),
        ("binary", True, "binary[pyarrow]"),
        ("void", True, "object"),
        ("interval day to second", True, "timedelta64[us]"),
        ({"type": "array", "elementType": "integer", "containsNull": True}, True, "object"),
    ],
)
def test_dtypes_follow_the_spark_schema(spark_type, nullable, expected):
    assert str(pandas_dtype(Column("c", spark_type, nullable), "UTC")) == expected


def test_timestamps_carry_the_session_time_zone():
    assert str(pandas_dtype(Column("t", "timestamp", True), "Europe/Paris")) == "datetime64[us, Europe/Paris]"


def test_livy_sql_output_becomes_a_typed_table():
    output = {
        "status": "ok",
        "execution_count": 0,
        "data": {
            "application/json": {
                "schema": {
                    "type": "struct",
                    "fields": [
                        {"name": "n", "type": "long", "nullable": True, "metadata": {}},
                        {"name": "price", "type": "decimal(10,2)", "nullable": True, "metadata": {}},
                        {"name": "day", "type": "date", "nullable": True, "metadata": {}},
                        {"name": "at", "type": "timestamp", "nullable": True, "metadata": {}},
                    ],
                },
                "data": [[1, 2.5, "2024-01-02", "2024-01-02T03:04:05"], [None, None, None, None]],
            }
        },
    }
    result = output_to_result(output)
    frame = result.table
    assert result.kind is ResultKind.TABLE
    assert [str(t) for t in frame.dtypes] == [
        "Int64",
        "decimal128(10, 2)[pyarrow]",
        "date32[day][pyarrow]",
        "datetime64[us, UTC]",
    ]
    assert frame["price"][0] == decimal.Decimal("2.5") and frame["day"][0] == datetime.date(2024, 1, 2)
    assert frame["n"].isna()[1] and frame["at"][0] == pd.Timestamp("2024-01-02 03:04:05", tz="UTC")


def test_livy_table_magic_and_other_outputs():
    table = output_to_result(
        {
            "status": "ok",
            "data": {
                "application/vnd.livy.table.v1+json": {
                    "headers": [{"name": "n", "type": "INT_TYPE"}, {"name": "s", "type": "STRING_TYPE"}],
                    "data": [[1, "a"], [None, "b"]],
                }
            },
        }
    )
    assert table.table["n"].tolist()[0] == 1 and str(table.table.dtypes["n"]) == "Int64"
    png = base64.b64encode(b"\x89PNG...").decode()
    image = output_to_result({"status": "ok", "data": {"image/png": png, "text/plain": ""}})
    assert image.kind is ResultKind.IMAGE and image.image_png == b"\x89PNG..."
    text = output_to_result({"status": "ok", "data": {"text/plain": "res0: Int = 2"}})
    assert text.kind is ResultKind.TEXT and text.text == "res0: Int = 2"
    error = output_to_result({"status": "error", "ename": "E", "evalue": "bad", "traceback": ["line\n"]})
    assert not error.ok and error.error_summary() == "E: bad" and error.traceback == ("line\n",)


def test_remote_error_renders_the_remote_traceback():
    result = Result.of_error(
        "ValueError",
        "nope",
        ["Traceback (most recent call last):\n", '  File "<statement-1>", line 1\n', "ValueError: nope\n"],
    )
    lines = remote_error(result)._render_traceback_()
    assert lines[-1] == "ValueError: nope" and len(lines) == 3
    bare = remote_error(Result.of_error("SessionGone", "ended"))._render_traceback_()
    assert bare == ["SessionGone: ended"]


def test_display_forms():
    cols = [Column("n", "integer", False), Column("d", "date", True), Column("m", "decimal(4,1)", True)]
    frame = frame_from_rows([[1, "2024-01-02", "1.5"], [2, None, None]], cols, None)
    result = Result.of_table(frame, truncated=True, row_limit=2)
    assert "Showing the first 2 rows" in as_text(result)
    assert "<table" in mime_bundle(result)["text/html"]
    body = as_json(result)
    assert body["data"] == [[1, "2024-01-02", "1.5"], [2, None, None]] and body["truncated"] is True
    frame.attrs["query_id"] = "01b2-c3"
    assert as_text(result).splitlines()[-2:] == [
        "Showing the first 2 rows; the result has more. Use -n N to change the limit (-n -1 for all rows).",
        "Query id: 01b2-c3",
    ], "the notes under a table say what was cut and which query made it"
