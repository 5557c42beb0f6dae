"""SQL parameters as the magics, the CLI and the API take them: ``NAME[:TYPE]=VALUE``, typed."""

from __future__ import annotations

import datetime
import decimal
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from prophecy_jupyter.errors import Invalid

_PARAMETER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
_PARAMETER_TYPE = re.compile(
    r"^(STRING|INT|INTEGER|BIGINT|SMALLINT|TINYINT|DOUBLE|FLOAT|BOOLEAN|DATE|TIMESTAMP|DECIMAL(\(\d+,\s*\d+\))?)\Z"
)


@dataclass(frozen=True)
class SqlParameter:
    """A named parameter (``:name`` in the statement); the value travels as text with its type."""

    name: str
    value: str | None
    type: str = "STRING"

    def __post_init__(self) -> None:
        if not _PARAMETER_NAME.match(self.name):
            raise Invalid(f"SQL parameter name {self.name!r} is not a plain identifier.")
        if not _PARAMETER_TYPE.match(self.type):
            raise Invalid(
                f"SQL parameter {self.name} has type {self.type!r}; use STRING, INT, BIGINT, DOUBLE, "
                "DECIMAL(p,s), BOOLEAN, DATE or TIMESTAMP."
            )
        try:
            self.python_value()
        except (ValueError, KeyError, decimal.InvalidOperation):
            raise Invalid(f"SQL parameter {self.name}: {self.value!r} is not a {self.type}.") from None

    def python_value(self) -> Any:
        """The value as the Python object of its type (what Spark binds)."""
        value, base_type = self.value, self.type.split("(")[0]
        if value is None:
            return None
        if base_type in ("INT", "INTEGER", "BIGINT", "SMALLINT", "TINYINT"):
            return int(value)
        if base_type in ("DOUBLE", "FLOAT"):
            return float(value)
        if base_type == "DECIMAL":
            return decimal.Decimal(value)
        if base_type == "BOOLEAN":
            return {"true": True, "false": False}[value.strip().lower()]
        if base_type == "DATE":
            return datetime.date.fromisoformat(value)
        if base_type == "TIMESTAMP":
            return datetime.datetime.fromisoformat(value)
        return value

    @classmethod
    def parse(cls, text: str) -> SqlParameter:
        """``NAME=VALUE`` or ``NAME:TYPE=VALUE``, as typed in a magic or on a command line."""
        key, equals, value = text.partition("=")
        if not equals:
            raise Invalid(f"A SQL parameter is NAME=VALUE or NAME:TYPE=VALUE, not {text!r}.")
        name, _, kind = key.partition(":")
        return cls(name.strip(), value, (kind.strip() or "STRING").upper())

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "type": self.type}


_SNOWFLAKE_TYPES = {
    "STRING": "TEXT",
    "DOUBLE": "REAL",
    "FLOAT": "REAL",
    "BOOLEAN": "BOOLEAN",
    "DATE": "DATE",
    "TIMESTAMP": "TIMESTAMP_NTZ",
}
# What comes right before the ``:`` of a VARIANT path (``src:name``, ``f(x):name``, ``a[0]:name``,
# ``"Src":name``) or of a cast (``x::name``): not a parameter.
_PATH_BEFORE = re.compile(r"[A-Za-z0-9_$\")\]:]")
_SKIPPED = re.compile(
    r"'(?:[^'\\]|\\.|'')*'"  # a string, with '' and backslash escapes
    r'|"(?:[^"]|"")*"'  # a quoted identifier
    r"|\$\$.*?\$\$"  # a $$ string
    r"|--[^\n]*|//[^\n]*|/\*.*?\*/",  # comments
    re.S,
)


def snowflake_type(parameter: SqlParameter) -> str:
    """The Snowflake type the connector binds the parameter's value as (``TEXT``, ``FIXED`` ...)."""
    return _SNOWFLAKE_TYPES.get(parameter.type.split("(")[0], "FIXED")


def qmark_query(query: str, parameters: Sequence[SqlParameter]) -> tuple[str, list[SqlParameter]]:
    """Snowflake binds positional ``?`` markers: the query with each ``:name`` of a given parameter
    made a ``?``, and the parameters in the markers' order. A ``:name`` in a string, a quoted
    identifier or a comment, a VARIANT path (``src:name``) or a cast (``x::name``) stays; a given
    parameter the query does not use is refused (naming it)."""
    by_name = {p.name: p for p in parameters}
    bound: list[SqlParameter] = []
    pieces, start = [], 0
    skipped = [(m.start(), m.end()) for m in _SKIPPED.finditer(query)]
    for marker in re.finditer(r":([A-Za-z_][A-Za-z0-9_]*)\b", query):
        at, name = marker.start(), marker.group(1)
        inside = any(begin <= at < end for begin, end in skipped)
        if inside or name not in by_name or _PATH_BEFORE.match(query[at - 1 : at]):
            continue
        pieces += [query[start:at], "?"]
        bound.append(by_name[name])
        start = marker.end()
    unused = sorted({p.name for p in parameters} - {p.name for p in bound})
    if unused:
        raise Invalid(f"SQL parameter {', '.join(unused)} is not used in the query (as :name).", "parameters")
    return "".join(pieces) + query[start:], bound
