"""Results as notebook output (MIME bundles) and as terminal text."""

from __future__ import annotations

import base64
import datetime
import decimal
from typing import Any

from prophecy_jupyter.errors import RemoteError
from prophecy_jupyter.results.model import Result, ResultKind


def remote_error(result: Result) -> RemoteError:
    """The error a statement that failed on the fabric raises in the notebook (IPython shows the
    remote traceback, not ours)."""
    return RemoteError(result.error_summary(), result.traceback, result.error_name)


def table_notes(result: Result) -> list[str]:
    """What is said under a table: that rows were left out, and which warehouse query made it
    (where the fabric names it)."""
    notes = []
    if result.truncated:
        notes.append(
            f"Showing the first {result.row_limit:,} rows; the result has more. "
            "Use -n N to change the limit (-n -1 for all rows)."
        )
    query_id = result.table.attrs.get("query_id") if result.table is not None else None
    if query_id:
        notes.append(f"Query id: {query_id}")
    return notes


def mime_bundle(result: Result) -> dict[str, Any]:
    """The notebook output for a non-error result."""
    if result.kind is ResultKind.TABLE and result.table is not None:
        frame = result.table
        return {"text/html": frame._repr_html_(), "text/plain": repr(frame)}
    if result.kind is ResultKind.IMAGE and result.image_png is not None:
        return {"image/png": base64.b64encode(result.image_png).decode(), "text/plain": result.text}
    if result.kind is ResultKind.HTML and result.html is not None:
        return {"text/html": result.html, "text/plain": result.text}
    return {"text/plain": result.text}


def show(result: Result) -> None:
    """Display a result in IPython; an error raises :class:`RemoteError` so the cell fails."""
    from IPython.display import display

    if not result.ok:
        raise remote_error(result)
    if result.kind is ResultKind.TEXT:
        if result.text:
            print(result.text)
        return
    if result.text and result.kind is not ResultKind.TABLE:
        print(result.text)
    display(mime_bundle(result), raw=True)
    for note in table_notes(result):
        display({"text/plain": note, "text/markdown": f"*{note}*"}, raw=True)


def as_text(result: Result, max_rows: int = 60) -> str:
    """A result for a terminal."""
    if not result.ok:
        lines = [line.rstrip("\n") for line in result.traceback]
        return "\n".join(lines if lines else [*lines, result.error_summary()])
    if result.kind is ResultKind.TABLE and result.table is not None:
        return "\n".join([result.table.to_string(max_rows=max_rows), *table_notes(result)])
    if result.kind is ResultKind.IMAGE:
        return (
            result.text + "\n" if result.text else ""
        ) + f"<image/png, {len(result.image_png or b'')} bytes>"
    return result.text


def _json_value(value: Any) -> Any:
    """A cell value as JSON: ISO dates and times, decimals as strings, bytes as base64."""
    import pandas as pd  # here: the magics load without pandas (0.25 s), which only a table needs

    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (datetime.date, datetime.datetime, datetime.time, pd.Timestamp)):
        return value.isoformat()
    if isinstance(value, pd.Timedelta):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, float) and value != value:
        return None
    return value.item() if hasattr(value, "item") else value


def as_json(result: Result) -> dict[str, Any]:
    """A result as JSON for scripts (tables as records with the Spark-derived dtypes)."""
    if not result.ok:
        return {
            "status": "error",
            "ename": result.error_name,
            "evalue": result.error_message,
            "traceback": result.traceback,
        }
    body: dict[str, Any] = {"status": "ok", "kind": result.kind.value, "text": result.text}
    if result.kind is ResultKind.TABLE and result.table is not None:
        frame = result.table
        body["columns"] = [{"name": str(c), "dtype": str(t)} for c, t in frame.dtypes.items()]
        body["data"] = [[_json_value(v) for v in row] for row in frame.itertuples(index=False, name=None)]
        body["truncated"] = result.truncated
    elif result.kind is ResultKind.IMAGE and result.image_png is not None:
        body["image/png"] = base64.b64encode(result.image_png).decode()
    elif result.kind is ResultKind.HTML:
        body["html"] = result.html
    return body
