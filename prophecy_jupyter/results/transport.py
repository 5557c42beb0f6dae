"""Tables from a remote Spark driver to local pandas, over any text-only statement channel.

The remote side runs :func:`fetch_code`: it collects at most ``limit + 1`` rows (to know whether
the result was truncated) and serialises them as compressed Arrow IPC when the driver has
pyarrow, or as JSON rows otherwise. The payload travels as text in chunks: the first chunk
comes with a header line in the first statement's output; the others are fetched by
:func:`chunk_code` statements, so no single answer grows past ``chunk_chars``.

The local side assembles the chunks with :class:`prophecy_jupyter.results.frames.TableAssembler`;
column types come from the Spark schema in the header (see :mod:`prophecy_jupyter.results.schema`).
Both formats travel base64-encoded, so that Livy's trimming of statement output can never touch
the data.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from prophecy_jupyter.results.sending import SNOWPARK_RECEIVER, SPARK_RECEIVER, RemoteReceiver
from prophecy_jupyter.sql_parameters import SqlParameter, qmark_query, snowflake_type

HEADER_PREFIX = "PROPHECY-TABLE "
DEFAULT_CHUNK_CHARS = 16 * 1024 * 1024  # a multiple of 4, so every chunk is whole base64

# Runs on the remote driver (Python 3.8+, Spark 3.x or 4.x, with or without pyarrow).
_REMOTE_HELPER = r"""
def __prophecy_arrow(df, source):
    import pyarrow as pa
    if hasattr(source, "toArrow"):
        try:
            return source.toArrow()
        except Exception:
            pass
    batches = source._collect_as_arrow()
    if batches:
        return pa.Table.from_batches(batches)
    from pyspark.sql.pandas.types import to_arrow_schema
    return to_arrow_schema(df.schema).empty_table()

def __prophecy_table(df, limit, chunk_chars, prefer_arrow, key):
    import base64, json, time
    store = globals().setdefault("__prophecy_tables", {})
    source = df if limit < 0 else df.limit(limit + 1)
    header = {"schema": df.schema.jsonValue(),
              "timezone": df.sparkSession.conf.get("spark.sql.session.timeZone")}
    table = None
    if prefer_arrow:
        try:
            import pyarrow as pa
            table = __prophecy_arrow(df, source)
        except Exception:
            table = None
    if table is not None:
        truncated = 0 <= limit < table.num_rows
        if truncated:
            table = table.slice(0, limit)
        codec = pa.Codec("zstd", 3) if pa.Codec.is_available("zstd") else (
            "lz4" if pa.Codec.is_available("lz4") else None)
        table = table.combine_chunks()
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema, options=pa.ipc.IpcWriteOptions(compression=codec)) as w:
            w.write_table(table, max_chunksize=1 << 20)
        text = base64.b64encode(sink.getvalue()).decode("ascii")
        header.update(format="arrow", rows=table.num_rows, truncated=truncated)
    else:
        type_names = [type(f.dataType).__name__ for f in df.schema.fields]
        def encode(value, type_name):
            if value is None:
                return None
            if type_name == "TimestampType":
                return int(time.mktime(value.timetuple())) * 1000000 + value.microsecond
            if type_name == "DayTimeIntervalType":
                return (value.days * 86400 + value.seconds) * 1000000 + value.microseconds
            if type_name in ("DecimalType", "DateType", "TimestampNTZType"):
                return str(value) if type_name == "DecimalType" else value.isoformat()
            if type_name == "BinaryType":
                return base64.b64encode(bytes(value)).decode("ascii")
            return plain(value)
        def plain(value):
            if hasattr(value, "asDict"):
                return {k: plain(v) for k, v in value.asDict().items()}
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            if isinstance(value, (list, tuple)):
                return [plain(v) for v in value]
            if isinstance(value, (bytes, bytearray)):
                return base64.b64encode(bytes(value)).decode("ascii")
            if hasattr(value, "isoformat"):
                return value.isoformat()
            if type(value).__name__ == "Decimal":
                return str(value)
            return value
        rows = source.collect()
        truncated = 0 <= limit < len(rows)
        rows = rows[:limit] if truncated else rows
        encoded = json.dumps([[encode(v, k) for v, k in zip(r, type_names)] for r in rows]).encode()
        text = base64.b64encode(encoded).decode("ascii")
        header.update(format="json", rows=len(rows), truncated=truncated)
    chunks = [text[i:i + chunk_chars] for i in range(0, len(text), chunk_chars)] or [""]
    header["chunks"] = len(chunks)
    if len(chunks) > 1:
        store[key] = chunks
    print("PROPHECY-TABLE " + json.dumps(header))
    print(chunks[0])
"""


def fetch_code(
    source_expression: str,
    limit: int,
    key: str,
    prefer_arrow: bool = True,
    chunk_chars: int = DEFAULT_CHUNK_CHARS,
) -> str:
    """Python for the remote driver that prints the header and first chunk of a DataFrame.

    ``source_expression`` evaluates to a Spark DataFrame there (a variable name, or
    ``spark.sql(...)``); ``limit`` < 0 means every row. Chunks hold a multiple of 4 characters,
    so that each one decodes on its own.
    """
    call = (
        f"__prophecy_table({source_expression}, {int(limit)}, {whole_base64(chunk_chars)}, "
        f"{bool(prefer_arrow)}, {key!r})"
    )
    return _REMOTE_HELPER + call


def whole_base64(chunk_chars: int) -> int:
    """The chunk size rounded down to a multiple of 4 characters, so each chunk decodes alone."""
    return max(4, chunk_chars - chunk_chars % 4)


def sql_source(query: str, parameters: Sequence[SqlParameter] = ()) -> str:
    """A remote expression for the DataFrame of a SQL query, its ``:name`` parameters bound."""
    if not parameters:
        return f"spark.sql({query!r})"
    args = ", ".join(f"{p.name!r}: {parameter_literal(p)}" for p in parameters)
    return f"spark.sql({query!r}, args={{{args}}})"


def snowpark_fetch_code(source_expression: str, limit: int, key: str, _arrow: bool, chunk_chars: int) -> str:
    """Python for a Snowpark interpreter that prints the header and first chunk of a table: of a
    Snowpark DataFrame, or of a SQL query's text (its rows always travel as Arrow)."""
    size = whole_base64(chunk_chars)
    arguments = f"{source_expression}, {int(limit)}, {size}, {key!r}, globals(), session"
    return f"__prophecy_snowpark_table({arguments})"


def snowpark_sql_source(query: str, parameters: Sequence[SqlParameter] = ()) -> str:
    """A SQL query for a Snowpark interpreter, run through the session's connection: its text, or
    with parameters its text with ``?`` markers and the typed values Snowflake binds to them."""
    if not parameters:
        return repr(query)
    text, bound = qmark_query(query, parameters)
    return f"({text!r}, {snowflake_bindings(bound)})"


def snowflake_bindings(parameters: Sequence[SqlParameter]) -> str:
    """The parameters as a Python list of the connector's typed bindings (``(type, value)``)."""
    return "[" + ", ".join(f"({snowflake_type(p)!r}, {parameter_literal(p)})" for p in parameters) + "]"


@dataclass(frozen=True)
class RemoteTables:
    """How an engine's interpreter hands over tables: the code that prints a DataFrame's header
    and first chunk, the source of a SQL query's table, and how it makes a DataFrame of a table
    sent to it."""

    fetch_code: Callable[[str, int, str, bool, int], str]
    sql_source: Callable[[str, Sequence[SqlParameter]], str]
    receiver: RemoteReceiver


SPARK_TABLES = RemoteTables(fetch_code, sql_source, SPARK_RECEIVER)
SNOWPARK_TABLES = RemoteTables(snowpark_fetch_code, snowpark_sql_source, SNOWPARK_RECEIVER)


def python_literal(value: Any) -> str:
    """A Python expression for a plain value (``float('inf')`` where ``repr`` gives a bare name)."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"float({str(value)!r})"
    return repr(value)


def parameter_literal(parameter: SqlParameter) -> str:
    """A parameter's value as a Python expression for the remote driver."""
    value = parameter.python_value()
    if isinstance(value, decimal.Decimal):
        return f"__import__('decimal').Decimal({str(value)!r})"
    if isinstance(value, datetime.date):  # a date or a datetime
        return f"__import__('datetime').{type(value).__name__}.fromisoformat({value.isoformat()!r})"
    return python_literal(value)


def chunk_code(key: str, index: int, last: bool) -> str:
    """Python for the remote driver that prints one more chunk (and frees them after the last)."""
    store = "globals()['__prophecy_tables']"
    if last:
        return f"print({store}.pop({key!r})[{int(index)}])"
    return f"print({store}[{key!r}][{int(index)}])"


@dataclass
class TableHeader:
    schema: dict[str, Any]
    timezone: str | None
    format: str
    rows: int
    truncated: bool
    chunks: int
    query_id: str | None = None
    """The warehouse's id of the query that made the table (Snowflake), if it has one."""


def parse_first_output(text: str) -> tuple[TableHeader, str]:
    """Split the first statement's output into its header and first chunk."""
    start = text.find(HEADER_PREFIX)
    if start < 0:
        raise ValueError("the remote driver did not answer with a table header")
    newline = text.find("\n", start)
    newline = len(text) if newline < 0 else newline
    raw = json.loads(text[start + len(HEADER_PREFIX) : newline])
    first_chunk = text[newline + 1 :]
    header = TableHeader(
        raw["schema"],
        raw.get("timezone"),
        raw["format"],
        raw["rows"],
        bool(raw["truncated"]),
        raw["chunks"],
        raw.get("query_id"),
    )
    return header, first_chunk


class TablePayload:
    """A fetched table before it becomes a DataFrame: its header and the Arrow or JSON bytes."""

    def __init__(self, header: TableHeader, data: bytes, limit: int):
        self.header = header
        self.limit = limit
        self._data: bytes | None = data

    @property
    def size(self) -> int:
        return len(self._data or b"")

    def peek(self) -> bytes:
        """The bytes, kept (to send them on)."""
        if self._data is None:
            raise ValueError("the table's data was already taken")
        return self._data

    def release(self) -> bytes:
        """The bytes, handed over: this payload no longer holds them."""
        data, self._data = self.peek(), None
        return data


class TableAssembler:
    """Collects the chunks of one remote table, decoding each as it arrives."""

    def __init__(self, header: TableHeader):
        self.header = header
        self._parts: list[bytes] = []

    def add(self, chunk: str) -> None:
        self._parts.append(base64.b64decode(chunk.strip()))

    def payload(self, limit: int) -> TablePayload:
        data = b"".join(self._parts)
        self._parts = []
        return TablePayload(self.header, data, limit)
