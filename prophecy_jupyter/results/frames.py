"""DataFrames from the table transport: Arrow IPC or JSON rows, typed by the Spark schema."""

from __future__ import annotations

import base64
import datetime
import decimal
import json
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from prophecy_jupyter.results.schema import Column, columns, pandas_dtype
from prophecy_jupyter.results.transport import TablePayload


def frame_from_payload(payload: TablePayload) -> pd.DataFrame:
    """The DataFrame of a fetched table; the payload's bytes are released on the way, so the peak
    memory holds them or the decoded table, hardly both. The query id, where the fabric gave one,
    is in ``frame.attrs["query_id"]``."""
    header = payload.header
    data = payload.release()
    cols = columns(header.schema)
    if header.format == "arrow":
        # The system allocator hands memory back as columns are converted and released, so the
        # numpy arrays of the DataFrame can reuse it (Arrow's own pool would keep it).
        reader = pa.ipc.open_stream(pa.py_buffer(data), memory_pool=pa.system_memory_pool())
        arrays = reader.read_all().columns
        del data, reader
        frame = frame_from_arrow(arrays, cols, header.timezone)
    else:
        frame = frame_from_rows(json.loads(data), cols, header.timezone)
    if header.query_id:
        frame.attrs["query_id"] = header.query_id
    return frame


def _nullable(arrow_type: pa.DataType) -> Any:
    """Arrow numbers and booleans as pandas nullable dtypes, so that integers with nulls stay integers."""
    if pa.types.is_integer(arrow_type):
        return pd.api.types.pandas_dtype(str(arrow_type).capitalize())
    if pa.types.is_floating(arrow_type):
        return pd.Float32Dtype() if arrow_type == pa.float32() else pd.Float64Dtype()
    if pa.types.is_boolean(arrow_type):
        return pd.BooleanDtype()
    return None


def _column_from_arrow(values: pa.ChunkedArray, column: Column, timezone: str | None) -> pd.Series:
    """One Arrow column as its pandas dtype; Arrow-backed dtypes keep the Arrow buffers (no copy)."""
    dtype = pandas_dtype(column, timezone)
    category = column.category
    if category == "nested":
        return pd.Series(values.to_pylist(maps_as_pydicts="strict"), dtype=object)
    if category == "null":
        return pd.Series([None] * len(values), dtype=object)
    if category == "json":
        return pd.Series(_parsed(values.to_pylist()), dtype=object)
    if isinstance(dtype, (pd.ArrowDtype, pd.StringDtype)):
        if isinstance(dtype, pd.ArrowDtype) and values.type != dtype.pyarrow_dtype:
            values = values.cast(dtype.pyarrow_dtype)
        return pd.Series(pd.array(values, dtype=dtype), copy=False)
    if category == "timestamp":
        utc = values.cast(pa.timestamp("us")).to_numpy()
        instants = pd.DatetimeIndex(utc, copy=False).tz_localize("UTC").tz_convert(dtype.tz)
        return pd.Series(instants, copy=False)
    nullable = category in ("integer", "float", "boolean") and column.nullable
    series = values.to_pandas(types_mapper=_nullable if nullable else None, coerce_temporal_nanoseconds=False)
    if series.dtype != dtype:
        series = series.astype(dtype)
    elif isinstance(series.values, np.ndarray) and not series.values.flags.writeable:
        series = series.copy()  # a zero-copy view of Arrow memory is read-only; users expect to edit
    return series


def frame_from_arrow(
    arrays: list[pa.ChunkedArray | None], cols: list[Column], timezone: str | None
) -> pd.DataFrame:
    """A DataFrame typed by the Spark schema from the columns of an Arrow table.

    The list is emptied as the columns are converted, so each column's Arrow memory is released
    (or handed over, for Arrow-backed dtypes) as soon as it is no longer needed.
    """
    data: dict[int, pd.Series] = {}
    for i, column in enumerate(cols):
        values, arrays[i] = arrays[i], None
        data[i] = _column_from_arrow(values, column, timezone)
        del values
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
    if category == "string":
        return pd.array(values, dtype=dtype)
    if category == "decimal":
        return pd.array([None if v is None else decimal.Decimal(str(v)) for v in values], dtype=dtype)
    if category == "date":
        dates = [None if v is None else datetime.date.fromisoformat(str(v)[:10]) for v in values]
        return pd.array(dates, dtype=dtype)
    if category == "binary":
        blobs = [
            None if v is None else bytes(v) if isinstance(v, list) else base64.b64decode(v) for v in values
        ]
        return pd.array(blobs, dtype=dtype)
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
    if category == "json":
        return pd.Series(_parsed(values), dtype=object)
    return pd.Series(values, dtype=object)


def _parsed(values: list[Any]) -> list[Any]:
    """JSON texts as the Python objects they stand for (None stays None)."""
    return [None if v is None else json.loads(v) if isinstance(v, str) else v for v in values]


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
