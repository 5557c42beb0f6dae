"""Databricks SQL warehouses through the Statement Execution API, on databricks-sdk.

There is no remote state to keep, so a session is only a name for the notebook's statements. A
statement is submitted without waiting (``wait_timeout=0s``) and polled by the session service;
results come as Arrow chunks behind EXTERNAL_LINKS, presigned URLs fetched without the
workspace's Authorization header, and become one Arrow stream typed by the result's schema.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import requests
from databricks.sdk.errors import DatabricksError
from databricks.sdk.service.sql import StatementState
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from prophecy_jupyter.engines.base import RemoteSession, SessionSpec, SessionState, StatementStatus
from prophecy_jupyter.engines.databricks_client import STATUS_POLLS, Workspace, WorkspaceConnection
from prophecy_jupyter.errors import EngineError, StatementLost
from prophecy_jupyter.results.model import Result, ResultKind, RunState
from prophecy_jupyter.results.transport import SPARK_TABLES, TableHeader, TablePayload
from prophecy_jupyter.sql_parameters import SqlParameter

DEFAULT_ROW_LIMIT = 100_000
_STATES = {
    StatementState.PENDING: RunState.QUEUED,
    StatementState.RUNNING: RunState.RUNNING,
}
# Statement Execution type names as Spark's JSON type names, which decide the pandas dtypes.
_SPARK_TYPES = {
    "BOOLEAN": "boolean",
    "BYTE": "byte",
    "SHORT": "short",
    "INT": "integer",
    "LONG": "long",
    "FLOAT": "float",
    "DOUBLE": "double",
    "DATE": "date",
    "TIMESTAMP": "timestamp",
    "TIMESTAMP_NTZ": "timestamp_ntz",
    "STRING": "string",
    "CHAR": "string",
    "BINARY": "binary",
    "NULL": "void",
}


@dataclass(frozen=True)
class SqlWarehouseConnection(WorkspaceConnection):
    """A workspace and the SQL warehouse the fabric runs on."""

    warehouse_id: str = ""
    catalog: str | None = None
    schema: str | None = None


def spark_schema(columns: list[dict[str, Any]]) -> dict[str, Any]:
    """A result manifest's columns as a Spark ``StructType`` JSON."""
    fields = []
    for column in columns:
        name = str(column.get("type_name") or "STRING").upper()
        if name == "DECIMAL":
            spark = f"decimal({column.get('type_precision', 38)},{column.get('type_scale', 18)})"
        elif name == "INTERVAL":
            spark = str(column.get("type_text") or "interval").lower()
        else:
            spark = _SPARK_TYPES.get(name, {"type": name.lower()})  # nested types stay objects
        fields.append({"name": column["name"], "type": spark, "nullable": True, "metadata": {}})
    return {"type": "struct", "fields": fields}


class DatabricksSqlEngine:
    """One workspace client per user and fabric; statements go to the fabric's warehouse."""

    name = "databricks-sql"
    poll_policy = STATUS_POLLS
    tables = SPARK_TABLES  # its SQL runs in the warehouse (RunsSql); no interpreter hands tables over

    def __init__(self, connection: SqlWarehouseConnection, secret: str | None, fabric_name: str):
        self.connection = connection
        self.fabric_name = fabric_name
        self.workspace = Workspace(connection, secret, fabric_name)
        self.client = self.workspace.client
        self._downloads = requests.Session()  # presigned links: no workspace credentials
        retry = Retry(
            total=3, backoff_factor=0.25, status_forcelist=(500, 502, 503, 504), allowed_methods={"GET"}
        )
        self._downloads.mount("https://", HTTPAdapter(max_retries=retry))
        self._downloads.mount("http://", HTTPAdapter(max_retries=retry))
        self._limits: dict[str, int] = {}

    @property
    def supports_long_poll(self) -> bool:
        return False

    def prepare(self, notify: Callable[[str], None], timeout: float) -> None:
        """Check the warehouse; a stopped one starts with the first statement."""
        warehouse = self.workspace.call(
            "read the SQL warehouse", self.client.warehouses.get, self.connection.warehouse_id
        )
        state = warehouse.state.value if warehouse.state else "UNKNOWN"
        if state in ("DELETED", "DELETING"):
            raise EngineError(f"The SQL warehouse of fabric '{self.fabric_name}' is {state}.")
        if state in ("STOPPED", "STOPPING", "STARTING"):
            notify(
                f"SQL warehouse {warehouse.name or self.connection.warehouse_id} is {state}; the first "
                "statement starts it, which can take a few minutes."
            )

    def open_session(self, spec: SessionSpec) -> RemoteSession:
        return self.session(uuid.uuid4().hex)

    def session(self, session_id: str, wait: float = 0.0) -> RemoteSession:
        return RemoteSession(session_id, SessionState.IDLE, "ready", app_id=self.connection.warehouse_id)

    def close_session(self, session_id: str) -> None:
        """Nothing is kept on the warehouse between statements."""

    def submit(self, session_id: str, code: str, kind: str, run_id: str) -> StatementStatus:
        if kind != "sql":
            raise EngineError(
                f"Fabric '{self.fabric_name}' is a SQL warehouse: it runs SQL only. Use %%sql cells "
                "(or a databricks fabric for Python)."
            )
        return self.submit_query(code, [], DEFAULT_ROW_LIMIT)

    def submit_query(self, query: str, parameters: list[SqlParameter], limit: int) -> StatementStatus:
        """Start a statement (at most ``limit`` rows; < 0 for all) and return without waiting."""
        body: dict[str, Any] = {
            "warehouse_id": self.connection.warehouse_id,
            "statement": query,
            "wait_timeout": "0s",
            "disposition": "EXTERNAL_LINKS",
            "format": "ARROW_STREAM",
            "parameters": [p.to_json() for p in parameters],
        }
        if limit >= 0:
            body["row_limit"] = limit
        if self.connection.catalog:
            body["catalog"] = self.connection.catalog
        if self.connection.schema:
            body["schema"] = self.connection.schema
        answer = self.workspace.post_once("run the statement", "/api/2.0/sql/statements", body)
        statement_id = answer["statement_id"]
        self._limits[statement_id] = limit
        return StatementStatus(id=statement_id, state=RunState.QUEUED)

    def poll(self, session_id: str, statement_id: str, wait: float = 0.0) -> StatementStatus:
        try:
            answer = self.client.statement_execution.get_statement(statement_id)
        except DatabricksError as exc:
            if "does not exist" in str(exc):
                raise StatementLost(f"Fabric '{self.fabric_name}' no longer knows the statement.") from None
            raise self.workspace.error("report the statement", exc) from None
        except TimeoutError:
            raise EngineError(f"Fabric '{self.fabric_name}' did not report the statement.") from None
        state = answer.status.state if answer.status else None
        if state == StatementState.SUCCEEDED:
            payload = self._payload(answer.as_dict(), self._limits.pop(statement_id, DEFAULT_ROW_LIMIT))
            result = Result(ResultKind.TABLE, truncated=payload.header.truncated, row_limit=payload.limit)
            return StatementStatus(id=statement_id, state=RunState.FINISHED, result=result, payload=payload)
        if state in (StatementState.FAILED, StatementState.CLOSED):
            self._limits.pop(statement_id, None)
            error = answer.status.error
            name = error.error_code.value if error and error.error_code else "SqlError"
            message = error.message if error and error.message else f"The statement is {state.value}."
            return StatementStatus(
                id=statement_id, state=RunState.FAILED, result=Result.of_error(name, message)
            )
        if state == StatementState.CANCELED:
            self._limits.pop(statement_id, None)
            return StatementStatus(
                id=statement_id,
                state=RunState.CANCELLED,
                result=Result.of_error("Cancelled", "The statement was cancelled."),
            )
        return StatementStatus(id=statement_id, state=_STATES.get(state, RunState.RUNNING))

    def _payload(self, answer: dict[str, Any], limit: int) -> TablePayload:
        """Every chunk of a finished statement as one Arrow stream, with the Spark schema."""
        manifest = answer.get("manifest") or {}
        columns = (manifest.get("schema") or {}).get("columns") or []
        links = list((answer.get("result") or {}).get("external_links") or [])
        batches: list[pa.RecordBatch] = []
        arrow_schema: pa.Schema | None = None
        while links:
            link = links.pop(0)
            reader = pa.ipc.open_stream(self._download(link["external_link"]))
            arrow_schema = reader.schema
            batches.extend(reader)
            following = link.get("next_chunk_index")
            if following is not None and not links:
                chunk = self.workspace.call(
                    "fetch the next result chunk",
                    self.client.statement_execution.get_statement_result_chunk_n,
                    answer["statement_id"],
                    following,
                )
                links.extend(more.as_dict() for more in chunk.external_links or [])
        sink = pa.BufferOutputStream()
        if arrow_schema is not None:
            with pa.ipc.new_stream(sink, arrow_schema) as writer:
                for batch in batches:
                    writer.write_batch(batch)
        else:  # no rows: an empty stream of the manifest's columns
            with pa.ipc.new_stream(sink, pa.schema([(c["name"], pa.null()) for c in columns])):
                pass
        rows = sum(batch.num_rows for batch in batches)
        schema = spark_schema(columns)
        if arrow_schema is not None:  # the manifest has no nullability; the Arrow schema does
            for spark_field, arrow_field in zip(schema["fields"], arrow_schema, strict=False):
                spark_field["nullable"] = arrow_field.nullable
        header = TableHeader(schema, "UTC", "arrow", rows, bool(manifest.get("truncated")), 1)
        return TablePayload(header, sink.getvalue().to_pybytes(), limit)

    def _download(self, url: str) -> bytes:
        try:
            response = self._downloads.get(url, timeout=self.connection.http_timeout)
        except requests.RequestException as exc:
            raise EngineError(
                f"Could not download a result chunk of fabric '{self.fabric_name}': {exc}"
            ) from None
        if response.status_code != 200:
            raise EngineError(
                f"The result chunk of fabric '{self.fabric_name}' could not be downloaded (HTTP "
                f"{response.status_code}); the link may have expired. Run the cell again."
            )
        return response.content

    def cancel(self, session_id: str, statement_id: str) -> None:
        self.workspace.call(
            "cancel the statement", self.client.statement_execution.cancel_execution, statement_id
        )

    def complete(self, session_id: str, code: str, cursor: int, kind: str) -> list[str]:
        return []

    def logs(self, session_id: str, size: int = 100) -> list[str]:
        warehouse = self.workspace.call(
            "read the SQL warehouse", self.client.warehouses.get, self.connection.warehouse_id
        )
        state = warehouse.state.value if warehouse.state else "UNKNOWN"
        return [f"SQL warehouse {warehouse.name or self.connection.warehouse_id}: {state}"]

    def keepalive(self, session_id: str) -> None:
        """Warehouses keep nothing per session."""

    def close(self) -> None:
        self._downloads.close()
