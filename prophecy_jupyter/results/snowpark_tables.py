"""Tables from a Snowpark session, on the interpreter's side: a query (SQL text or a Snowpark
DataFrame's) run through the session's connector connection, its rows fetched as Arrow (never row
by row in Python), and its columns typed by Snowflake's own metadata as a Spark-style schema, so
that the notebook's side builds the frame exactly as it does for Spark:

NUMBER(p,0) → the integer of its width (``byte`` … ``long``) or ``decimal(p,0)`` past 18 digits;
NUMBER(p,s) → ``decimal(p,s)``; FLOAT → ``double``; TEXT → ``string``; BOOLEAN; DATE;
TIMESTAMP_NTZ → ``timestamp_ntz``; TIMESTAMP_LTZ and TIMESTAMP_TZ → ``timestamp`` in the session's
time zone; VARIANT, OBJECT and ARRAY → ``json`` (parsed into Python objects); BINARY; TIME → text.

The query is submitted asynchronously and its status checked until it ends, so that its id and
state (queued, running, resuming the warehouse) are known while it runs: the interpreter reports
them as the statement's progress and cancels the query by its id.

Under Snowpark's local testing there is no warehouse: a DataFrame's rows come from Snowpark's
emulator and its columns are typed by the DataFrame's Snowpark schema (``fetch_emulated``).
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pyarrow as pa

_INTEGER_WIDTHS = ((2, "byte", pa.int8()), (4, "short", pa.int16()), (9, "integer", pa.int32()))
_INTEGER_WIDTHS += ((18, "long", pa.int64()),)
_SIMPLE: dict[str, tuple[str, pa.DataType]] = {
    "REAL": ("double", pa.float64()),
    "TEXT": ("string", pa.string()),
    "BOOLEAN": ("boolean", pa.bool_()),
    "DATE": ("date", pa.date32()),
    "BINARY": ("binary", pa.binary()),
    "TIME": ("string", pa.string()),
    "VARIANT": ("json", pa.string()),
    "OBJECT": ("json", pa.string()),
    "ARRAY": ("json", pa.string()),
}


def column_type(type_name: str, precision: int | None, scale: int | None) -> tuple[str, pa.DataType | None]:
    """A Snowflake column's Spark-style type, and the Arrow type its values are cast to (None:
    as the connector gives them)."""
    if type_name == "FIXED":
        precision, scale = precision or 38, scale or 0
        if scale == 0:
            for digits, name, arrow in _INTEGER_WIDTHS:
                if precision <= digits:
                    return name, arrow
        return f"decimal({precision},{scale})", pa.decimal128(precision, scale)
    if type_name == "TIMESTAMP_NTZ":
        return "timestamp_ntz", None
    if type_name in ("TIMESTAMP_LTZ", "TIMESTAMP_TZ"):
        return "timestamp", None
    return _SIMPLE.get(type_name, ("string", pa.string()))


def schema_of(description: list[Any]) -> tuple[dict[str, Any], list[pa.DataType | None]]:
    """A cursor's columns as a Spark ``StructType`` JSON, and each column's Arrow cast."""
    from snowflake.connector.constants import FIELD_ID_TO_NAME

    fields, casts = [], []
    for column in description:
        name, arrow = column_type(FIELD_ID_TO_NAME[column.type_code], column.precision, column.scale)
        nullable = bool(column.is_nullable)
        fields.append({"name": column.name, "type": name, "nullable": nullable, "metadata": {}})
        casts.append(arrow)
    return {"type": "struct", "fields": fields}, casts


STATUS_INTERVAL = (0.02, 1.0)
"""Bounds of the wait between two status checks of a running query (a tenth of its time so far)."""


class QueryWatch:
    """The query a statement waits on and its last state, read by the progress and cancel threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._current: tuple[str, str, float] | None = None  # query id, state, monotonic start

    def saw(self, query_id: str, state: str, started: float) -> None:
        with self._lock:
            self._current = (query_id, state, started)

    def clear(self) -> None:
        with self._lock:
            self._current = None

    @property
    def query_id(self) -> str | None:
        with self._lock:
            return self._current[0] if self._current else None

    def describe(self) -> str | None:
        """``query <id> running, 12 s``: what the statement waits on (None: no query)."""
        with self._lock:
            if self._current is None:
                return None
            query_id, state, started = self._current
        return f"query {query_id} {state.lower().replace('_', ' ')}, {time.monotonic() - started:.0f} s"


def run_query(cursor: Any, query: str, watch: QueryWatch | None = None, bindings: list | None = None) -> str:
    """Submit ``query`` asynchronously (its ``?`` markers bound to ``bindings``, the connector's
    ``(type, value)`` pairs) and wait for it, telling ``watch`` its state (queued, running,
    resuming warehouse …); then the cursor holds its results. Returns its query id. A query that
    fails or is cancelled raises the connector's error (Snowflake's code and SQL state)."""
    connection = cursor.connection
    cursor.execute_async(query, bindings)
    query_id = cursor.sfqid
    started = time.monotonic()
    low, high = STATUS_INTERVAL
    try:
        if watch is not None:
            watch.saw(query_id, "submitted", started)
        while connection.is_still_running(status := connection.get_query_status_throw_if_error(query_id)):
            if watch is not None:
                watch.saw(query_id, status.name, started)
            time.sleep(min(high, max(low, (time.monotonic() - started) / 10)))
    finally:
        if watch is not None:
            watch.clear()
    cursor.get_results_from_sfqid(query_id)
    return query_id


Bound = tuple[str, list | None]
"""A query's text and the bindings of its ``?`` markers (None: it has none)."""


def _query(source: Any) -> tuple[list[Bound], Bound, list[str]]:
    """What to run for ``source`` (SQL text, SQL text and its bindings, or a Snowpark DataFrame):
    setup queries, the query whose rows are the table, and queries to run after. A DataFrame's
    queries keep their bindings (``session.sql(text, params=...)``), which its public ``queries``
    leaves out."""
    if isinstance(source, str):
        return [], (source, None), []
    if isinstance(source, tuple):
        return [], source, []
    from snowflake.snowpark._internal.analyzer.snowflake_plan import PlanQueryType

    compiled = source._plan.execution_queries
    *setup, last = [(q.sql.strip(), list(q.params) or None) for q in compiled[PlanQueryType.QUERIES]]
    return setup, last, [q.sql.strip() for q in compiled[PlanQueryType.POST_ACTIONS]]


def fetch(
    session: Any, source: Any, limit: int, watch: QueryWatch | None = None
) -> tuple[dict[str, Any], pa.Table, bool, str | None, str]:
    """Run ``source`` and take at most ``limit`` rows (< 0: all) as Arrow: the schema, the table,
    whether rows were left out, the session's time zone, and the query id."""
    connection = session.connection
    cursor = connection.cursor()
    setup, (query, bindings), after = _query(source)
    try:
        for statement, statement_bindings in setup:
            cursor.execute(statement, statement_bindings)
        query_id = run_query(cursor, query, watch, bindings)
        arrow = cursor.fetch_arrow_batches()  # reads the results in: the columns are known after it
        schema, casts = schema_of(cursor.description)
        batches, rows = [], 0
        for batch in arrow:  # one more row than asked, to know if any is left
            batches.append(batch)
            rows += batch.num_rows
            if 0 <= limit < rows:
                break
    finally:
        for statement in after:
            cursor.execute(statement)
        cursor.close()
    tables = [_as_table(b) for b in batches]  # chunks may differ in integer width: promote
    fetched = pa.concat_tables(tables, promote_options="permissive") if tables else None
    columns = []
    for i, cast in enumerate(casts):
        values = fetched.column(i) if fetched is not None else pa.chunked_array([], type=cast or pa.string())
        columns.append(values.cast(cast) if cast is not None and values.type != cast else values)
    table = pa.Table.from_arrays(columns, names=[f["name"] for f in schema["fields"]])
    truncated = 0 <= limit < table.num_rows
    if truncated:
        table = table.slice(0, limit)
    zone = getattr(connection, "_session_parameters", {}).get("TIMEZONE")
    return schema, table, truncated, zone, query_id


EMULATED_SQL = (
    "SQL text does not run under Snowpark's local testing: its emulator runs the DataFrame API only "
    "(session.table, create_dataframe, filter, group_by, join ...). Write the step with DataFrames, or "
    "run it on a snowflake fabric."
)


def fetch_emulated(
    session: Any, source: Any, limit: int, watch: QueryWatch | None = None
) -> tuple[dict[str, Any], pa.Table, bool, str | None, str | None]:
    """``fetch`` under Snowpark's local testing: the rows of a DataFrame from Snowpark's emulator,
    typed by its Snowpark schema (no query, so no query id; timestamps with a zone in UTC)."""
    if isinstance(source, (str, tuple)):
        raise NotImplementedError(EMULATED_SQL)
    rows = (source.limit(limit + 1) if limit >= 0 else source).collect()
    truncated = 0 <= limit < len(rows)
    rows = rows[:limit] if truncated else rows
    fields, columns = [], []
    for i, field in enumerate(source.schema.fields):
        name, arrow = _emulated_type(field.datatype)
        fields.append({"name": field.name, "type": name, "nullable": bool(field.nullable), "metadata": {}})
        columns.append(_emulated_column([row[i] for row in rows], name, arrow))
    table = pa.Table.from_arrays(columns, names=[f["name"] for f in fields])
    return {"type": "struct", "fields": fields}, table, truncated, None, None


def _emulated_type(datatype: Any) -> tuple[str, pa.DataType]:
    """A Snowpark type's Spark-style name and Arrow type, as ``column_type`` gives Snowflake's."""
    from snowflake.snowpark import types

    if isinstance(datatype, types.DecimalType):
        name, arrow = column_type("FIXED", datatype.precision, datatype.scale)
        return name, arrow or pa.decimal128(38, 0)
    if isinstance(datatype, types.TimestampType):
        zoned = datatype.tz in (types.TimestampTimeZone.LTZ, types.TimestampTimeZone.TZ)
        return ("timestamp", pa.timestamp("us", tz="UTC")) if zoned else ("timestamp_ntz", pa.timestamp("us"))
    integers = {
        types.ByteType: ("byte", pa.int8()),
        types.ShortType: ("short", pa.int16()),
        types.IntegerType: ("integer", pa.int32()),
        types.LongType: ("long", pa.int64()),
    }
    simple = {
        types.FloatType: "REAL",
        types.DoubleType: "REAL",
        types.StringType: "TEXT",
        types.BooleanType: "BOOLEAN",
        types.DateType: "DATE",
        types.BinaryType: "BINARY",
        types.TimeType: "TIME",
    }
    if type(datatype) in integers:
        return integers[type(datatype)]
    if type(datatype) in simple:
        return _SIMPLE[simple[type(datatype)]]
    return "json", pa.string()  # VARIANT, OBJECT, ARRAY, MAP and the rest: JSON text


def _emulated_column(values: list[Any], name: str, arrow: pa.DataType) -> pa.Array:
    """One column of the emulator's values (numpy scalars, Decimals for integers, floats for
    integer sums: Arrow converts each) as ``arrow``; JSON and TIME values as text."""
    if name == "json":
        values = [v if v is None or isinstance(v, str) else json.dumps(v, default=str) for v in values]
    elif name == "string":  # TIME travels as text
        values = [v if v is None or isinstance(v, str) else str(v) for v in values]
    return pa.array(values, type=arrow)


def _as_table(batch: pa.Table | pa.RecordBatch) -> pa.Table:
    """The connector yields tables (or record batches, by version): one table either way."""
    return batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])


Fetched = tuple[dict[str, Any], pa.Table, bool, str | None, str | None]
Fetch = Callable[[Any, Any, int, QueryWatch | None], Fetched]
"""``fetch`` or ``fetch_emulated``: (session, source, limit, watch) → schema, table, truncated,
time zone, query id."""


def table_statement(
    source: Any,
    limit: int,
    chunk_chars: int,
    key: str,
    store: dict[str, Any],
    session: Any,
    watch: QueryWatch | None = None,
    fetcher: Fetch = fetch,
) -> None:
    """Print a table's header line and its first chunk, keeping the other chunks in ``store``
    for the statements that fetch them (the same wire as Spark fabrics' tables)."""
    schema, table, truncated, zone, query_id = fetcher(session, source, limit, watch)
    sink = pa.BufferOutputStream()
    codec = "zstd" if pa.Codec.is_available("zstd") else None
    with pa.ipc.new_stream(sink, table.schema, options=pa.ipc.IpcWriteOptions(compression=codec)) as writer:
        writer.write_table(table.combine_chunks(), max_chunksize=1 << 20)
    text = base64.b64encode(sink.getvalue()).decode("ascii")
    chunks = [text[i : i + chunk_chars] for i in range(0, len(text), chunk_chars)] or [""]
    if len(chunks) > 1:
        store.setdefault("__prophecy_tables", {})[key] = chunks
    header = {
        "schema": schema,
        "timezone": zone,
        "format": "arrow",
        "rows": table.num_rows,
        "truncated": truncated,
        "chunks": len(chunks),
        "query_id": query_id,
    }
    print("PROPHECY-TABLE " + json.dumps(header))
    print(chunks[0])


def livy_sql_output(
    session: Any, query: str, max_rows: int, watch: QueryWatch | None = None, fetcher: Fetch = fetch
) -> dict[str, Any]:
    """A SQL statement's output as Livy's SQL interpreter gives it (``application/json``: the
    schema and the rows as JSON values)."""
    schema, table, _, _, _ = fetcher(session, query, max_rows, watch)
    rows = [[_json_value(v) for v in row.values()] for row in table.to_pylist()]
    return {"application/json": {"schema": schema, "data": rows}}


def _json_value(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if type(value).__name__ == "Decimal":
        return float(value)
    return value
