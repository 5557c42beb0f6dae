"""Tables from the kernel to a fabric: a local pandas DataFrame (or pyarrow table) becomes a
DataFrame there, typed by its Arrow schema (the inverse of the result type table).

The kernel encodes the table as compressed Arrow IPC streams of at most ``part_bytes`` each
(:func:`encoded_parts`); each part travels to the fabric's interpreter either as an upload to our
gateway or as base64 text in statements (:func:`piece_code`), and :func:`receive_code` reads it
there; the last part builds the DataFrame (Spark) or Snowpark DataFrame (Snowflake) and prints a
summary line (:func:`parse_sent`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from prophecy_jupyter.errors import Invalid

SENT_PREFIX = "PROPHECY-SENT "
ARROW_STREAM = "application/vnd.apache.arrow.stream"
DEFAULT_PART_BYTES = 16 * 1024 * 1024
ROWS_PER_BATCH = 1 << 17

# Runs in the remote interpreter: pieces of a part's base64 text wait there until the part is read.
# A send given up (``discard_code``) is remembered there, so that what of it arrives later (its
# statements can reach the session after the discard) is dropped too.
_PIECES = r"""
def __prophecy_piece(key, text):
    if key not in globals().get("__prophecy_dropped", ()):
        globals().setdefault("__prophecy_pieces", {}).setdefault(key, []).append(text)
"""

# Runs in the remote interpreter: reads a part (an uploaded file or the pieces sent before), and
# after the last one makes the DataFrame from every part.
_RECEIVE = r"""
def __prophecy_receive(key, name, view, last, upload, make):
    import base64, json, os
    import pyarrow as pa
    if key in globals().get("__prophecy_dropped", ()):
        globals().get("__prophecy_pieces", {}).pop(key, None)
        if upload is not None:
            os.remove(os.path.join(os.environ["PROPHECY_GATEWAY_UPLOADS"], upload))
        raise RuntimeError("This send was given up: its parts are dropped.")
    parts = globals().setdefault("__prophecy_parts", {}).setdefault(key, [])
    try:
        if upload is not None:
            path = os.path.join(os.environ["PROPHECY_GATEWAY_UPLOADS"], upload)
            try:
                with pa.OSFile(path, "rb") as source:
                    parts.append(pa.ipc.open_stream(source).read_all())
            finally:
                os.remove(path)
        else:
            text = "".join(globals().get("__prophecy_pieces", {}).pop(key, []))
            parts.append(pa.ipc.open_stream(pa.py_buffer(base64.b64decode(text))).read_all())
    except BaseException:
        globals()["__prophecy_parts"].pop(key, None)
        raise
    if not last:
        return
    table = pa.concat_tables(globals()["__prophecy_parts"].pop(key)).combine_chunks()
    frame, schema = make(table, name, view)
    globals()[name] = frame
    print("PROPHECY-SENT " + json.dumps({"rows": table.num_rows, "schema": schema}))
"""

_MAKE_SPARK = r"""
def __prophecy_make_spark(table, name, view):
    from pyspark.sql.pandas.types import from_arrow_schema
    try:
        schema = from_arrow_schema(table.schema, prefer_timestamp_ntz=True)
    except TypeError:  # Spark before 3.4 has no timestamp_ntz
        schema = from_arrow_schema(table.schema)
    # One partition per Arrow batch: batches of the table's share of two tasks per core, so that
    # a million rows are a few partitions, not a hundred of Spark's default 10,000 rows.
    batch, before = "spark.sql.execution.arrow.maxRecordsPerBatch", None
    try:
        before = spark.conf.get(batch)
        slices = 2 * spark.sparkContext.defaultParallelism
        spark.conf.set(batch, str(max(10000, -(-table.num_rows // slices))))
    except Exception:  # no SparkContext here (Spark Connect): Spark's own batches
        pass
    try:
        frame = spark.createDataFrame(table, schema=schema)
    except TypeError:  # Spark 3 takes pandas
        frame = spark.createDataFrame(table.to_pandas(), schema=schema)
    finally:
        if before is not None:
            spark.conf.set(batch, before)
    if view:
        frame.createOrReplaceTempView(name)
    return frame, [[f.name, f.dataType.simpleString()] for f in frame.schema.fields]
"""

_MAKE_SNOWPARK = r"""
def __prophecy_make_snowpark(table, name, view):
    frame = session.create_dataframe(table.to_pandas())
    if view:
        frame.create_or_replace_temp_view(name)
    return frame, [[f.name, str(f.datatype)] for f in frame.schema.fields]
"""


@dataclass(frozen=True)
class RemoteReceiver:
    """How an interpreter makes a DataFrame from the parts it received."""

    definition: str
    function: str
    what: str
    """What the sent table becomes there, in words."""


SPARK_RECEIVER = RemoteReceiver(_MAKE_SPARK, "__prophecy_make_spark", "Spark DataFrame")
SNOWPARK_RECEIVER = RemoteReceiver(_MAKE_SNOWPARK, "__prophecy_make_snowpark", "Snowpark DataFrame")


def piece_code(key: str, text: str) -> str:
    """Python for the interpreter that keeps one piece of a part's base64 text."""
    return _PIECES + f"__prophecy_piece({key!r}, {text!r})"


def receive_code(
    receiver: RemoteReceiver, key: str, name: str, view: bool, last: bool, upload: str | None
) -> str:
    """Python for the interpreter that reads one part (``upload``: the file our gateway holds it
    in, else the pieces sent before); the last part makes the DataFrame ``name``."""
    call = (
        f"__prophecy_receive({key!r}, {check_target(name)!r}, {bool(view)}, {bool(last)}, "
        f"{upload!r}, {receiver.function})"
    )
    return _RECEIVE + receiver.definition + call


def discard_code(key: str) -> str:
    """Python for the interpreter that drops what it holds of a table whose send was given up, and
    what of it arrives later."""
    return (
        f"globals().setdefault('__prophecy_dropped', set()).add({key!r})\n"
        f"globals().get('__prophecy_parts', {{}}).pop({key!r}, None)\n"
        f"globals().get('__prophecy_pieces', {{}}).pop({key!r}, None)"
    )


def check_target(name: str) -> str:
    """A name for the sent DataFrame: a Python identifier (it is a variable there)."""
    if not name.isidentifier() or name.startswith("__"):
        raise Invalid(f"name: {name!r} is not a Python variable name", "name")
    return name


@dataclass(frozen=True)
class Sent:
    """What the fabric made of a sent table: its rows and its columns' types there."""

    rows: int
    schema: list[tuple[str, str]]


def parse_sent(text: str) -> Sent:
    """The summary the last part's statement printed."""
    start = text.find(SENT_PREFIX)
    if start < 0:
        raise ValueError("the fabric did not say what it made of the table")
    line = text[start + len(SENT_PREFIX) :].split("\n", 1)[0]
    raw = json.loads(line)
    return Sent(int(raw["rows"]), [(str(n), str(t)) for n, t in raw["schema"]])


# -- the kernel's side: a local table as Arrow parts -----------------------------------------------


def arrow_table(value: Any, variable: str) -> Any:
    """The local value as a pyarrow Table typed for a fabric; Invalid for anything else than a
    pandas DataFrame or a pyarrow Table or RecordBatch."""
    import pandas as pd
    import pyarrow as pa

    if isinstance(value, pd.DataFrame):
        if not all(isinstance(c, str) for c in value.columns):
            raise Invalid(f"{variable}: every column needs a string name to be sent", "input")
        try:
            table = pa.Table.from_pandas(value, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
            raise Invalid(f"{variable}: a column cannot be typed for the fabric ({exc})", "input") from None
    elif isinstance(value, pa.RecordBatch):
        table = pa.Table.from_batches([value])
    elif isinstance(value, pa.Table):
        table = value
    else:
        raise Invalid(
            f"{variable} is a {type(value).__module__}.{type(value).__name__}: only a pandas DataFrame "
            "or a pyarrow Table can be sent",
            "input",
        )
    # Unsafe only where nanoseconds are cut to the microseconds a fabric keeps.
    return table.cast(_fabric_schema(table.schema), safe=False).replace_schema_metadata(None)


def _fabric_schema(schema: Any) -> Any:
    import pyarrow as pa

    return pa.schema([field.with_type(_fabric_type(field.type)) for field in schema])


def _fabric_type(arrow_type: Any) -> Any:
    """The Arrow type a fabric takes for a local column: what it has no type for becomes the
    nearest one it has (unsigned integers, nanoseconds, large and dictionary-encoded columns)."""
    import pyarrow as pa
    import pyarrow.types as t

    if t.is_dictionary(arrow_type):
        return _fabric_type(arrow_type.value_type)
    if t.is_unsigned_integer(arrow_type):
        widths = {8: pa.int16(), 16: pa.int32(), 32: pa.int64()}
        return widths.get(arrow_type.bit_width, pa.decimal128(20, 0))
    if t.is_timestamp(arrow_type) and arrow_type.unit == "ns":
        return pa.timestamp("us", arrow_type.tz)
    if t.is_duration(arrow_type) and arrow_type.unit == "ns":
        return pa.duration("us")
    if t.is_large_string(arrow_type):
        return pa.string()
    if t.is_large_binary(arrow_type):
        return pa.binary()
    if t.is_large_list(arrow_type) or t.is_list(arrow_type):
        return pa.list_(arrow_type.value_field.with_type(_fabric_type(arrow_type.value_type)))
    if t.is_struct(arrow_type):
        return pa.struct([f.with_type(_fabric_type(f.type)) for f in arrow_type])
    if t.is_map(arrow_type):
        return pa.map_(_fabric_type(arrow_type.key_type), _fabric_type(arrow_type.item_type))
    return arrow_type


def encoded_parts(table: Any, part_bytes: int = DEFAULT_PART_BYTES) -> Iterator[bytes]:
    """The table as compressed Arrow IPC streams of about ``part_bytes`` each, each holding whole
    record batches (an empty table: one stream with its schema alone)."""
    import pyarrow as pa

    codec = pa.Codec("zstd", 1) if pa.Codec.is_available("zstd") else None
    options = pa.ipc.IpcWriteOptions(compression=codec)
    # Batches of about a part's size before compression, so that a part is not much past its size.
    rows = part_bytes * table.num_rows // max(table.nbytes, 1)
    sink = pa.BufferOutputStream()
    writer = pa.ipc.new_stream(sink, table.schema, options=options)
    for batch in table.to_batches(max_chunksize=min(max(rows, 1024), ROWS_PER_BATCH)):
        if sink.tell() >= part_bytes:
            writer.close()
            yield sink.getvalue().to_pybytes()
            sink = pa.BufferOutputStream()
            writer = pa.ipc.new_stream(sink, table.schema, options=options)
        writer.write_batch(batch)
    writer.close()
    yield sink.getvalue().to_pybytes()
