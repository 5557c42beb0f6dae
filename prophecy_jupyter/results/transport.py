"""Tables from a remote Spark driver to local pandas, over any text-only statement channel.

The remote side runs :func:`fetch_code`: it collects at most ``limit + 1`` rows (to know whether
the result was truncated) and serialises them as compressed Arrow IPC when the driver has
pyarrow, or as JSON rows otherwise. The payload travels as text in chunks: the first chunk
comes with a header line in the first statement's output; the others are fetched by
:func:`chunk_code` statements, so no single answer grows past ``chunk_chars``.

The local side assembles the chunks with :class:`TableAssembler`; column types come from the
Spark schema in the header (see :mod:`prophecy_jupyter.results.schema`). Both formats travel
base64-encoded, so that Livy's trimming of statement output can never touch the data.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import json
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pyarrow as pa

from prophecy_jupyter.results.schema import Column, columns, pandas_dtype

HEADER_PREFIX = "PROPHECY-TABLE "
DEFAULT_CHUNK_CHARS = 32 * 1024 * 1024

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
        codec = next((c for c in ("zstd", "lz4") if pa.Codec.is_available(c)), None)
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema, options=pa.ipc.IpcWriteOptions(compression=codec)) as w:
            w.write_table(table, max_chunksize=65536)
        text = base64.b64encode(sink.getvalue()).decode("ascii")
        header.update(format="arrow", rows=table.num_rows, truncated=truncated)
    else:
        kinds = [type(f.dataType).__name__ for f in df.schema.fields]
        def encode(value, kind):
            if value is None:
                return None
            if kind == "TimestampType":
                return int(time.mktime(value.timetuple())) * 1000000 + value.microsecond
            if kind == "DayTimeIntervalType":
                return (value.days * 86400 + value.seconds) * 1000000 + value.microseconds
            if kind in ("DecimalType", "DateType", "TimestampNTZType"):
                return str(value) if kind == "DecimalType" else value.isoformat()
            if kind == "BinaryType":
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
        encoded = json.dumps([[encode(v, k) for v, k in zip(r, kinds)] for r in rows]).encode()
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
    ``spark.sql(...)``); ``limit`` < 0 means every row.
    """
    call = (
        f"__prophecy_table({source_expression}, {int(limit)}, {int(chunk_chars)}, "
        f"{bool(prefer_arrow)}, {key!r})"
    )
    return _REMOTE_HELPER + call


def sql_source(query: str) -> str:
    """A remote expression for the DataFrame of a SQL query."""
    return f"spark.sql({query!r})"


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


def parse_first_output(text: str) -> tuple[TableHeader, str]:
    """Split the first statement's output into its header and first chunk."""
    start = text.find(HEADER_PREFIX)
    if start < 0:
        raise ValueError("the remote driver did not answer with a table header")
    header_line, _, first_chunk = text[start + len(HEADER_PREFIX) :].partition("\n")
    raw = json.loads(header_line)
    header = TableHeader(
        raw["schema"], raw.get("timezone"), raw["format"], raw["rows"], bool(raw["truncated"]), raw["chunks"]
    )
    return header, first_chunk.strip()


class TableAssembler:
    """Collects the chunks of one remote table and turns them into a typed DataFrame."""

    def __init__(self, header: TableHeader):
        self.header = header
        self._chunks: list[str] = []

    def add(self, chunk: str) -> None:
        self._chunks.append(chunk.strip())

    def frame(self) -> pd.DataFrame:
        text = "".join(self._chunks)
        self._chunks = []
        cols = columns(self.header.schema)
        if self.header.format == "arrow":
            table = pa.ipc.open_stream(pa.py_buffer(base64.b64decode(text))).read_all()
            del text
            return frame_from_arrow(table, cols, self.header.timezone)
        return frame_from_rows(json.loads(base64.b64decode(text)), cols, self.header.timezone)


def _numpy_or_nullable(series: pd.Series, dtype: Any) -> pd.Series:
    return series if series.dtype == dtype else series.astype(dtype)


def _mapper(arrow_type: pa.DataType) -> Any:
    """Arrow to pandas nullable dtypes, so that integers with nulls stay integers."""
    if pa.types.is_integer(arrow_type):
        return pd.api.types.pandas_dtype(str(arrow_type).capitalize())
    if pa.types.is_floating(arrow_type):
        return pd.Float32Dtype() if arrow_type == pa.float32() else pd.Float64Dtype()
    if pa.types.is_boolean(arrow_type):
        return pd.BooleanDtype()
    return None


def frame_from_arrow(table: pa.Table, cols: list[Column], timezone: str | None) -> pd.DataFrame:
    """A DataFrame typed by the Spark schema from an Arrow table (which is consumed)."""
    nested = {
        i: table.column(i).to_pylist(maps_as_pydicts="strict")
        for i, c in enumerate(cols)
        if c.category == "nested"
    }
    flat = table.rename_columns([str(i) for i in range(table.num_columns)])
    flat = flat.drop_columns([str(i) for i in nested])
    del table
    converted = flat.to_pandas(
        types_mapper=_mapper,
        self_destruct=True,
        split_blocks=True,
        date_as_object=True,
        coerce_temporal_nanoseconds=False,
    )
    del flat
    data: dict[int, Any] = {}
    for i, column in enumerate(cols):
        dtype = pandas_dtype(column, timezone)
        if i in nested:
            data[i] = pd.Series(nested.pop(i), dtype=object)
            continue
        series = converted.pop(str(i))
        if column.category == "timestamp":
            series = series.dt.tz_convert(dtype.tz)
        elif column.category == "null":
            series = pd.Series([None] * len(series), dtype=object)
        data[i] = _numpy_or_nullable(series, dtype)
    frame = pd.DataFrame(data, copy=False)
    frame.columns = [c.name for c in cols]
    return frame


def _decode(values: list[Any], column: Column, timezone: str | None) -> Any:
    """One JSON column as its pandas dtype.

    Takes this module's encodings (see :func:`fetch_code`) and also the plainer ones of Livy's
    own SQL output: numbers for decimals, ISO strings for timestamps, byte lists for binaries.
    """
    dtype = pandas_dtype(column, timezone)
    category = column.category
    if category in ("integer", "float", "boolean"):
        if column.nullable:
            return pd.array(values, dtype=dtype)
        return pd.Series(values, dtype=dtype)
    if category == "decimal":
        return pd.Series([None if v is None else decimal.Decimal(str(v)) for v in values], dtype=object)
    if category == "date":
        return pd.Series(
            [None if v is None else datetime.date.fromisoformat(str(v)[:10]) for v in values], dtype=object
        )
    if category == "binary":
        return pd.Series(
            [None if v is None else bytes(v) if isinstance(v, list) else base64.b64decode(v) for v in values],
            dtype=object,
        )
    if category == "timestamp":
        if any(isinstance(v, str) for v in values):
            local = pd.to_datetime(pd.Series(values, dtype=object))
            return local.dt.tz_localize(dtype.tz).astype(dtype)
        utc = pd.to_datetime(pd.Series(values, dtype="Int64"), unit="us", utc=True)
        return utc.dt.tz_convert(dtype.tz).astype(dtype)
    if category == "timestamp_ntz":
        return pd.to_datetime(pd.Series(values, dtype=object)).astype(dtype)
    if category == "interval":
        return pd.to_timedelta(pd.Series(values, dtype="Int64"), unit="us").astype(dtype)
    return pd.Series(values, dtype=object)


def frame_from_rows(rows: list[list[Any]], cols: list[Column], timezone: str | None) -> pd.DataFrame:
    """A DataFrame typed by the Spark schema from JSON rows."""
    values_by_column = list(zip(*rows, strict=False)) if rows else [() for _ in cols]
    data = {
        i: _decode(list(values), column, timezone)
        for i, (values, column) in enumerate(zip(values_by_column, cols, strict=False))
    }
    frame = pd.DataFrame(data)
    frame.columns = [c.name for c in cols]
    return frame
