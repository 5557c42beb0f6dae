"""The interpreter process behind one gateway session.

Started by the gateway with ``python -m prophecy_jupyter.gateway.interpreter``. It connects back
over a Unix socket, builds its SparkSession (attached to the gateway's warm JVM, or in a JVM of
its own when isolated) and then runs statements one at a time in its main thread:

* every statement runs in its own Spark job group, so progress and cancel act on it alone;
* cancel cancels the job group every 100 ms while it has jobs, and interrupts driver-side
  Python with SIGINT, but never in the middle of a call into the JVM (that would leave the
  Py4J connection half-read);
* progress is the completed share of the job group's tasks, pushed while the statement runs.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import os
import sys
import threading
import warnings
from typing import Any

from prophecy_jupyter.gateway.repl import error_output, ok_output
from prophecy_jupyter.gateway.statement_loop import (
    InterruptGuard,
    Statement,
    StatementLoop,
    begin_session,
    connect,
)


class SparkInterruptGuard(InterruptGuard):
    """A KeyboardInterrupt raised while the main thread waits for a Py4J answer would leave that
    connection half-read, so the signal is ignored then; the canceller tries again later."""

    def install(self) -> None:
        super().install()
        from py4j import clientserver, java_gateway

        for cls in (clientserver.ClientServerConnection, java_gateway.GatewayConnection):
            cls.send_command = self._counted(cls.send_command)

    def _counted(self, original):
        guard = self

        def send_command(connection, command, *args, **kwargs):
            if threading.get_ident() != guard.main_thread:
                return original(connection, command, *args, **kwargs)
            guard.depth += 1
            try:
                return original(connection, command, *args, **kwargs)
            finally:
                guard.depth -= 1

        return send_command


def attach_to_shared_jvm(port: int, secret: str):
    """The SparkSession the gateway made for this interpreter on its SparkContext (the entry point
    of the Py4J server at ``port``), sharing its JVM."""
    os.environ["PYSPARK_GATEWAY_PORT"] = str(port)
    os.environ["PYSPARK_GATEWAY_SECRET"] = secret
    os.environ["PYSPARK_PIN_THREAD"] = "true"  # the gateway's server is a ClientServer, pinned threads
    from pyspark import SparkContext
    from pyspark.java_gateway import launch_gateway
    from pyspark.sql import SparkSession

    gateway = launch_gateway()
    del os.environ["PYSPARK_GATEWAY_PORT"], os.environ["PYSPARK_GATEWAY_SECRET"]
    jvm = gateway.jvm
    java_context = jvm.org.apache.spark.SparkContext.getOrCreate()
    jsc = jvm.org.apache.spark.api.java.JavaSparkContext.fromSparkContext(java_context)
    sc = SparkContext(gateway=gateway, jsc=jsc)
    spark = SparkSession(sc, gateway.entry_point)

    def refuse_stop(*_args, **_kwargs):
        raise RuntimeError(
            "This session shares the gateway's Spark context, which stays up; delete the session to end it."
        )

    SparkContext.stop = refuse_stop
    SparkSession.stop = refuse_stop
    return spark


def start_own_jvm(app_name: str, conf: dict[str, str]):
    """A SparkSession in a JVM of this process's own (process isolation)."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(app_name)
    for key, value in conf.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def progress_of(spark, group: str) -> float:
    """Completed share of the tasks of the job group's stages (0 when no task is known)."""
    tracker = spark.sparkContext.statusTracker()
    total = done = 0
    for job_id in tracker.getJobIdsForGroup(group):
        job = tracker.getJobInfo(job_id)
        if job is None:
            continue
        for stage_id in job.stageIds:
            stage = tracker.getStageInfo(stage_id)
            if stage is not None:
                total += stage.numTasks
                done += stage.numCompletedTasks
    return done / total if total else 0.0


def active_jobs(spark, group: str) -> bool:
    tracker = spark.sparkContext.statusTracker()
    active = set(tracker.getActiveJobsIds())
    return any(job in active for job in tracker.getJobIdsForGroup(group))


def json_value(value: Any) -> Any:
    """A Spark row value as JSON, the way Livy's SQL interpreter writes it."""
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode()
    if hasattr(value, "asDict"):
        return {k: json_value(v) for k, v in value.asDict().items()}
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    return value


class SparkInterpreter(StatementLoop):
    """Statements on a SparkSession, each in its own job group."""

    def __init__(self, channel, spark, group_prefix: str, sql_max_rows: int):
        super().__init__(channel, {"spark": spark, "sc": spark.sparkContext}, SparkInterruptGuard())
        self.spark = spark
        self.group_prefix = group_prefix
        self.sql_max_rows = sql_max_rows

    def group(self, statement: Statement) -> str:
        return f"{self.group_prefix}-{statement.id}"

    def begin(self, statement: Statement) -> None:
        self.spark.sparkContext.setJobGroup(self.group(statement), f"statement {statement.id}", True)

    def execute_sql(self, query: str) -> dict[str, Any]:
        try:
            frame = self.spark.sql(query)
            rows = frame.take(self.sql_max_rows)
        except KeyboardInterrupt:
            raise
        except Exception as exc:
            return error_output(exc, hide_frames_from=__file__)
        data = [[json_value(v) for v in row] for row in rows]
        schema = frame.schema.jsonValue()
        return ok_output({"application/json": {"schema": schema, "data": data}})

    def sql_names(self) -> list[str]:
        return [t.name for t in self.spark.catalog.listTables()]

    def stop_remote(self, statement: Statement) -> bool:
        if active_jobs(self.spark, self.group(statement)):
            self.spark.sparkContext.cancelJobGroup(self.group(statement))
            return True
        return False

    def progress(self, statement: Statement) -> float | None:
        return progress_of(self.spark, self.group(statement))


def _preload() -> None:
    # Loaded while the gateway's JVM may still be starting (SparkContext() would import pandas).
    import pandas  # noqa: F401
    import pyspark.sql  # noqa: F401


def main() -> None:
    channel, start = connect(_preload)
    spark = None
    try:
        if start is not None and start["op"] == "attach":  # a spare: on the JVM before a session asks
            spark = attach_to_shared_jvm(start["jvm"]["port"], start["jvm"]["secret"])
            channel.send({"op": "attached"})
            start = channel.receive()
        if start is None or start.get("op") != "start":
            return
        session_id = begin_session(start)
        if spark is not None and start["mode"] != "shared":
            raise RuntimeError("a spare interpreter runs on the shared JVM only")
        if spark is None and start["mode"] == "shared":
            spark = attach_to_shared_jvm(start["jvm"]["port"], start["jvm"]["secret"])
        if spark is None:
            spark = start_own_jvm(start["app_name"], start.get("spark_conf", {}))
        else:
            for key, value in start.get("runtime_conf", {}).items():
                spark.conf.set(key, value)
    except Exception as exc:
        channel.send({"op": "failed", "error": f"{type(exc).__name__}: {exc}"})
        raise
    # PySpark 4 warns on every DataFrame.toJSON() that its return type will change. Livy
    # clients (sparkmagic's %%sql, pylivy's download) print toJSON() rows and parse each line of
    # text/plain as JSON, and stderr goes into text/plain as in Livy, so the warning breaks them.
    warnings.filterwarnings("ignore", message="The return type of DataFrame.toJSON will be changed")
    sc = spark.sparkContext
    ui = sc.uiWebUrl if start["mode"] != "shared" else None
    channel.send({"op": "ready", "app_id": sc.applicationId, "spark_ui_url": ui})
    print(f"session {session_id} ready: Spark {spark.version}, app {sc.applicationId}", flush=True)
    SparkInterpreter(channel, spark, start["job_group_prefix"], start["sql_max_rows"]).serve()
    channel.close()
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
