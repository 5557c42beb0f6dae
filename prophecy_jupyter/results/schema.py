"""Spark schemas as pandas dtypes: the one place that decides a column's type.

Rules: a nullable integer, floating or boolean column becomes the matching pandas nullable
dtype (``Int64``, ``Float64``, ``boolean``) so that nulls never turn integers into floats; a
non-nullable one becomes the numpy dtype. Strings are pandas' ``string`` dtype; decimals keep
their precision and scale (``decimal128(p, s)[pyarrow]``, values are ``Decimal``), dates stay
dates (``date32[day][pyarrow]``, values are ``datetime.date``), binaries are bytes
(``binary[pyarrow]``): Arrow-backed, so they arrive without a copy per value. Timestamps are
``datetime64[us]``: with the session time zone for ``timestamp``, naive for ``timestamp_ntz``.
Nested types are objects (lists and dicts); ``void`` is objects (all None); ``json`` (Snowflake's
VARIANT, OBJECT and ARRAY, sent as JSON text) is objects parsed from it. Nothing is inferred from
the data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pyarrow as pa

_INTEGERS = {"byte": "int8", "short": "int16", "integer": "int32", "long": "int64"}
_FLOATS = {"float": "float32", "double": "float64"}
_OBJECTS = {"string", "binary", "date", "null", "void", "json"}
_DECIMAL = re.compile(r"^decimal\((\d+),\s*(\d+)\)$")
_DAY_TIME_INTERVAL = re.compile(r"^interval (day|hour|minute|second)( to (day|hour|minute|second))?$")


@dataclass(frozen=True)
class Column:
    """One top-level field of a Spark schema."""

    name: str
    type: Any
    nullable: bool

    @property
    def category(self) -> str:
        """``integer``, ``float``, ``boolean``, ``decimal``, ``string``, ``binary``, ``date``,
        ``timestamp``, ``timestamp_ntz``, ``interval``, ``null``, ``json`` or ``nested``."""
        t = self.type
        if isinstance(t, dict):
            return "nested"
        if t in _INTEGERS:
            return "integer"
        if t in _FLOATS:
            return "float"
        if t == "boolean":
            return "boolean"
        if t.startswith("decimal"):
            return "decimal"
        if t == "string" or t.startswith(("char(", "varchar(")) or t.startswith("string collate"):
            return "string"
        if t in ("timestamp", "timestamp_ntz"):
            return t
        if _DAY_TIME_INTERVAL.match(t):
            return "interval"
        if t in ("void", "null"):
            return "null"
        if t in _OBJECTS:
            return t
        return "nested"


def columns(schema: dict[str, Any]) -> list[Column]:
    """The top-level columns of a Spark ``StructType`` JSON."""
    return [Column(f["name"], f["type"], bool(f.get("nullable", True))) for f in schema["fields"]]


def pandas_dtype(column: Column, timezone: str | None) -> Any:
    """The pandas dtype a column of this Spark type becomes."""
    category = column.category
    if category == "integer":
        numpy_name = _INTEGERS[column.type]
        return pd.api.types.pandas_dtype(numpy_name.capitalize() if column.nullable else numpy_name)
    if category == "float":
        numpy_name = _FLOATS[column.type]
        return pd.api.types.pandas_dtype(numpy_name.capitalize() if column.nullable else numpy_name)
    if category == "boolean":
        return pd.BooleanDtype() if column.nullable else pd.api.types.pandas_dtype("bool")
    if category == "timestamp":
        return pd.DatetimeTZDtype(unit="us", tz=timezone or "UTC")
    if category == "timestamp_ntz":
        return pd.api.types.pandas_dtype("datetime64[us]")
    if category == "interval":
        return pd.api.types.pandas_dtype("timedelta64[us]")
    if category == "string":
        return pd.StringDtype("pyarrow")
    if category == "decimal":
        match = _DECIMAL.match(column.type)
        precision, scale = (int(match.group(1)), int(match.group(2))) if match else (38, 18)
        return pd.ArrowDtype(pa.decimal128(precision, scale))
    if category == "date":
        return pd.ArrowDtype(pa.date32())
    if category == "binary":
        return pd.ArrowDtype(pa.binary())
    return pd.api.types.pandas_dtype("object")
