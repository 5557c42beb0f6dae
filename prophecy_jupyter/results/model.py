"""One result model for every engine: text, HTML, image, table or error; and the states of the run
that produces it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


class RunState:
    """Normalised statement states (a run's life: queued → running → finished/failed/cancelled)."""

    QUEUED = "queued"
    RUNNING = "running"
    CANCELLING = "cancelling"
    FINISHED = "finished"
    FAILED = "failed"
    CANCELLED = "cancelled"
    DONE = frozenset({FINISHED, FAILED, CANCELLED})


class ResultKind(StrEnum):
    TEXT = "text"
    HTML = "html"
    IMAGE = "image"
    TABLE = "table"
    ERROR = "error"


@dataclass
class Result:
    """What a statement produced. ``text`` may accompany any kind (e.g. prints before a plot)."""

    kind: ResultKind
    text: str = ""
    html: str | None = None
    image_png: bytes | None = None
    table: pd.DataFrame | None = None
    truncated: bool = False
    row_limit: int | None = None
    error_name: str | None = None
    error_message: str | None = None
    traceback: Sequence[str] = ()

    @property
    def ok(self) -> bool:
        return self.kind is not ResultKind.ERROR

    @classmethod
    def of_text(cls, text: str) -> Result:
        return cls(ResultKind.TEXT, text=text)

    @classmethod
    def of_error(cls, name: str, message: str, traceback: list[str] | None = None) -> Result:
        return cls(ResultKind.ERROR, error_name=name, error_message=message, traceback=tuple(traceback or ()))

    @classmethod
    def of_table(cls, frame: pd.DataFrame, truncated: bool = False, row_limit: int | None = None) -> Result:
        return cls(ResultKind.TABLE, table=frame, truncated=truncated, row_limit=row_limit)

    def error_summary(self) -> str:
        """``Name: message`` for an error result."""
        return f"{self.error_name}: {self.error_message}" if self.error_message else f"{self.error_name}"
