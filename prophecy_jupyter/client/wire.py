"""What the server's API and its clients exchange, encoded and decoded by the same code on both
sides: a run's result, and the header that comes with a table's data."""

from __future__ import annotations

import base64
import dataclasses
import json
from typing import Any

from prophecy_jupyter.results.model import Result, ResultKind
from prophecy_jupyter.results.transport import TableHeader

TABLE_HEADER = "X-Prophecy-Table"
"""The response header of ``GET /runs/{id}/table`` that describes the data in the body."""


def encode_result(result: Result | None) -> dict[str, Any] | None:
    """A result as the API sends it (a table's rows come separately, from ``/runs/{id}/table``)."""
    if result is None:
        return None
    body: dict[str, Any] = {"kind": result.kind.value, "text": result.text}
    if result.kind is ResultKind.ERROR:
        body["error"] = {
            "name": result.error_name,
            "message": result.error_message,
            "traceback": result.traceback,
        }
    elif result.kind is ResultKind.HTML:
        body["html"] = result.html
    elif result.kind is ResultKind.IMAGE:
        body["image_png"] = base64.b64encode(result.image_png or b"").decode()
    elif result.kind is ResultKind.TABLE:
        body["table"] = {"truncated": result.truncated, "limit": result.row_limit}
    return body


def decode_result(body: dict[str, Any] | None) -> Result | None:
    """The result the API sent (the inverse of :func:`encode_result`)."""
    if body is None:
        return None
    kind = ResultKind(body["kind"])
    text = body.get("text", "")
    if kind is ResultKind.ERROR:
        error = body.get("error") or {}
        return Result.of_error(
            error.get("name") or "Error", error.get("message") or "", error.get("traceback")
        )
    if kind is ResultKind.IMAGE:
        return Result(kind, text=text, image_png=base64.b64decode(body.get("image_png", "")))
    if kind is ResultKind.HTML:
        return Result(kind, text=text, html=body.get("html"))
    if kind is ResultKind.TABLE:
        table = body.get("table") or {}
        return Result(kind, text=text, truncated=bool(table.get("truncated")), row_limit=table.get("limit"))
    return Result.of_text(text)


def encode_table_header(header: TableHeader) -> str:
    return json.dumps(dataclasses.asdict(header))


def decode_table_header(text: str) -> TableHeader:
    return TableHeader(**json.loads(text))
