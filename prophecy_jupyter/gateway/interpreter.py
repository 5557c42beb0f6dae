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
import queue
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

from prophecy_jupyter.gateway import protocol
from prophecy_jupyter.gateway.repl import PythonRepl, error_output, ok_output

PROGRESS_INTERVAL = 0.2
CANCEL_INTERVAL = 0.1
INTERRUPT_INTERVAL = 1.0


class InterruptGuard:
    """Lets SIGINT raise KeyboardInterrupt only while a statement runs outside the JVM.

    A KeyboardInterrupt raised while the main thread waits for a Py4J answer would leave that
    connection half-read, so the signal is ignored then; the canceller tries again later.
    """

    def __init__(self) -> None:
        self.main_thread = threading.main_thread().ident
        self.statement_running = False
        self.jvm_depth = 0

    def install(self) -> None:
        signal.signal(signal.SIGINT, self._on_sigint)
        self._wrap_py4j()

    @property
    def interruptible(self) -> bool:
        return self.statement_running and self.jvm_depth == 0

    def _on_sigint(self, signum, frame) -> None:
        if self.interruptible:
            raise KeyboardInterrupt

    def _wrap_py4j(self) -> None:
        from py4j import clientserver, java_gateway

        for cls in (clientserver.ClientServerConnection, java_gateway.GatewayConnection):
            cls.send_command = self._counted(cls.send_command)

    def _counted(self, original):
        guard = self

        def send_command(connection, command, *args, **kwargs):
            if threading.get_ident() != guard.main_thread:
                return original(connection, command, *args, **kwargs)
            guard.jvm_depth += 1
            try:
                return original(connection, command, *args, **kwargs)
            finally:
                guard.jvm_depth -= 1

        return send_command


def attach_to_shared_jvm(port: int, secret: str):
    """A new SparkSession on the gateway's SparkContext, sharing its JVM."""
    os.environ["PYSPARK_GATEWAY_PORT"] = str(port)
    os.environ["PYSPARK_GATEWAY_SECRET"] = secret
    from pyspark import SparkContext
    from pyspark.java_gateway import launch_gateway
    from pyspark.sql import SparkSession

    gateway = launch_gateway()
    del os.environ["PYSPARK_GATEWAY_PORT"], os.environ["PYSPARK_GATEWAY_SECRET"]
    jvm = gateway.jvm
    java_context = jvm.org.apache.spark.SparkContext.getOrCreate()
    jsc = jvm.org.apache.spark.api.java.JavaSparkContext.fromSparkContext(java_context)
    sc = SparkContext(gateway=gateway, jsc=jsc)
    session_class = (
        SparkSession._get_j_spark_session_class(jvm)
        if hasattr(SparkSession, "_get_j_spark_session_class")
        else jvm.org.apache.spark.sql.SparkSession
    )
    root = session_class.getDefaultSession().get()
    spark = SparkSession(sc, root.newSession())

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


class Statement:
    def __init__(self, statement_id: int, kind: str, code: str, group: str):
        self.id = statement_id
        self.kind = kind
        self.code = code
        self.group = group
        self.cancel_requested = False
        self.done = threading.Event()


class Interpreter:
    """Runs one session's statements and answers the gateway."""

    def __init__(self, channel: protocol.Channel, spark, group_prefix: str, sql_max_rows: int):
        self.channel = channel
        self.spark = spark
        self.group_prefix = group_prefix
        self.sql_max_rows = sql_max_rows
        self.repl = PythonRepl({"spark": spark, "sc": spark.sparkContext})
        self.runners: dict[str, Callable[[str], dict[str, Any]]] = {"sql": self._execute_sql}
        self.guard = InterruptGuard()
        self.current: Statement | None = None
        self.work: queue.Queue[Statement | None] = queue.Queue()

    def serve(self) -> None:
        self.guard.install()
        threading.Thread(target=self._read_messages, name="gateway-reader", daemon=True).start()
        threading.Thread(target=self._report_progress, name="progress", daemon=True).start()
        while (statement := self.work.get()) is not None:
            self._run(statement)

    def _read_messages(self) -> None:
        while (message := self.channel.receive()) is not None:
            op = message.get("op")
            if op == "execute":
                group = f"{self.group_prefix}-{message['id']}"
                self.work.put(Statement(message["id"], message["kind"], message["code"], group))
            elif op == "cancel":
                self._cancel(message["id"])
            elif op == "complete":
                candidates = self._complete(message)
                self.channel.send({"op": "completion", "ref": message["ref"], "candidates": candidates})
            elif op == "shutdown":
                break
        self.work.put(None)

    def _complete(self, message: dict[str, Any]) -> list[str]:
        if message.get("kind") == "sql":
            try:
                return sorted(t.name for t in self.spark.catalog.listTables())
            except Exception:
                return []
        return self.repl.complete(message["code"], message["cursor"])

    def _run(self, statement: Statement) -> None:
        self.current = statement
        self.spark.sparkContext.setJobGroup(statement.group, f"statement {statement.id}", True)
        self.guard.statement_running = True
        try:
            output = self._execute(statement)
            self.guard.statement_running = False
        except KeyboardInterrupt as exc:
            self.guard.statement_running = False
            output = error_output(exc)
        self.current = None
        statement.done.set()
        self.channel.send(
            {
                "op": "result",
                "id": statement.id,
                "output": output,
                "cancelled": statement.cancel_requested,
                "progress": 1.0,
            }
        )

    def _execute(self, statement: Statement) -> dict[str, Any]:
        return self.runners.get(statement.kind, self.repl.execute)(statement.code)

    def _execute_sql(self, query: str) -> dict[str, Any]:
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

    def _cancel(self, statement_id: int) -> None:
        statement = self.current
        if statement is None or statement.id != statement_id or statement.cancel_requested:
            return
        statement.cancel_requested = True
        threading.Thread(target=self._cancel_until_done, args=(statement,), daemon=True).start()

    def _cancel_until_done(self, statement: Statement) -> None:
        """Cancel the job group while it has jobs; interrupt driver-side Python otherwise."""
        main = threading.main_thread().ident
        last_interrupt = 0.0
        while not statement.done.is_set():
            try:
                jobs_running = active_jobs(self.spark, statement.group)
                if jobs_running:
                    self.spark.sparkContext.cancelJobGroup(statement.group)
            except Exception:
                jobs_running = False
            now = time.monotonic()
            if not jobs_running and self.guard.interruptible and now - last_interrupt >= INTERRUPT_INTERVAL:
                last_interrupt = now
                signal.pthread_kill(main, signal.SIGINT)
            statement.done.wait(CANCEL_INTERVAL)

    def _report_progress(self) -> None:
        last: tuple[int, float] | None = None
        while True:
            time.sleep(PROGRESS_INTERVAL)
            statement = self.current
            if statement is None:
                continue
            try:
                value = progress_of(self.spark, statement.group)
            except Exception:
                continue
            if statement.done.is_set() or (statement.id, value) == last:
                continue
            last = (statement.id, value)
            self.channel.send({"op": "progress", "id": statement.id, "progress": value})


def main() -> None:
    channel = protocol.Channel.connect(os.environ.pop(protocol.SOCKET_ENV))
    session_id = int(os.environ.pop(protocol.SESSION_ENV))
    token = os.environ.pop(protocol.TOKEN_ENV)
    channel.send({"op": "hello", "session": session_id, "token": token, "pid": os.getpid()})
    # Loaded while the gateway's JVM may still be starting (SparkContext() would import pandas).
    import pandas  # noqa: F401
    import pyspark.sql  # noqa: F401

    start = channel.receive()
    if start is None or start.get("op") != "start":
        return
    try:
        if start["mode"] == "shared":
            spark = attach_to_shared_jvm(start["jvm"]["port"], start["jvm"]["secret"])
            for key, value in start.get("runtime_conf", {}).items():
                spark.conf.set(key, value)
        else:
            spark = start_own_jvm(start["app_name"], start.get("spark_conf", {}))
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
    Interpreter(channel, spark, start["job_group_prefix"], start["sql_max_rows"]).serve()
    channel.close()
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
