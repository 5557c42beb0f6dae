"""Benchmark 2: ``%%sql -o`` of a cached Spark table into pandas, end to end, in a fresh client process.

Run as ``python -m benchmarks.transfer {ours,sparkmagic,connect} --rows N --out FILE`` (the
gateway's URL and token come in ``BENCH_GATEWAY_URL`` and ``BENCH_GATEWAY_TOKEN``, a Spark Connect
server's port in ``BENCH_CONNECT_PORT``); :func:`measure_transfer` starts them all and compares
them: ours and sparkmagic on our gateway, then Spark Connect's ``toPandas()`` and ``toArrow()``,
each on a Spark Connect server of its own started from .venv's pyspark, the client in
``.venv-connect``.
"""

from __future__ import annotations

import argparse
import gc
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import (
    CONNECT_PORT_ENV,
    CONNECT_PYTHON,
    FABRIC,
    MB,
    PeakRss,
    connect_server,
    run_worker,
    statement_times,
    summary,
    worker_env,
    write_result,
)

QUERY = "SELECT * FROM bench"
COLUMNS = (
    "id AS l",
    "if(id % 10 = 0, null, cast(id % 1000000 AS int)) AS i",
    "cast(id AS double) * 1.5 AS d",
    "concat('row-', id) AS s",
    "id % 3 = 0 AS b",
    "date_add(date'2024-01-01', cast(id % 3650 AS int)) AS dt",
    "timestamp'2024-01-01 00:00:00' + make_interval(0, 0, 0, 0, 0, 0, id) AS ts",
    "cast(id / 100 AS decimal(12, 2)) AS dec",
)
# The pandas dtypes a Spark type may become, and the Python type of its values when they are objects.
EXPECTED: dict[str, tuple[tuple[str, ...], str | None]] = {
    "bigint": (("int64", "Int64"), None),
    "int": (("int32", "Int32"), None),
    "double": (("float64", "Float64"), None),
    "string": (("object", "string"), "str"),
    "boolean": (("bool", "boolean"), None),
    "date": (("object", "date32[day][pyarrow]"), "date"),
    "decimal(12,2)": (("object", "decimal128(12, 2)[pyarrow]"), "Decimal"),
}
# The Arrow type a Spark type becomes (pyspark's own mapping, ``to_arrow_type``): what a client that
# hands over a pyarrow Table is judged by. Timestamps are judged apart: zone-aware microseconds.
ARROW_EXPECTED: dict[str, tuple[str, ...]] = {
    "bigint": ("int64",),
    "int": ("int32",),
    "double": ("double",),
    "string": ("string", "large_string"),
    "boolean": ("bool",),
    "date": ("date32[day]",),
    "decimal(12,2)": ("decimal128(12, 2)",),
}
URL_ENV = "BENCH_GATEWAY_URL"
TOKEN_ENV = "BENCH_GATEWAY_TOKEN"
CONNECT_METHODS = {"connect_topandas": "toPandas", "connect_toarrow": "toArrow"}
"""Each Spark Connect client of this benchmark: its key in the results, and the method it calls."""


def setup_code(rows: int) -> str:
    """PySpark that caches the table ``bench`` in the session (not timed)."""
    columns = ", ".join(repr(c) for c in COLUMNS)
    return (
        f"bench = spark.range({rows}).selectExpr({columns}).cache()\n"
        "print(bench.count())\n"
        "bench.createOrReplaceTempView('bench')"
    )


def follows_spark_type(spark_type: str, column: dict[str, str]) -> bool:
    """Whether a column's dtype (and value type) is what its Spark type gives, with no guessing."""
    if spark_type == "timestamp":
        return column["dtype"].startswith("datetime64[") and "," in column["dtype"]  # zone-aware
    dtypes, value_type = EXPECTED.get(spark_type, ((), None))
    return column["dtype"] in dtypes and value_type in (None, column["value_type"])


def follows_spark_arrow_type(spark_type: str, column: dict[str, str]) -> bool:
    """Whether an Arrow column's type is the one its Spark type gives (a client handing over Arrow)."""
    if spark_type == "timestamp":
        return column["dtype"].startswith("timestamp[us, tz=")  # zone-aware, Spark's microseconds
    return column["dtype"] in ARROW_EXPECTED.get(spark_type, ())


def columns_of(frame: Any) -> dict[str, dict[str, str]]:
    """Each column's dtype, and the Python type of its first value (for object columns); for a
    pyarrow Table, each column's Arrow type (``format`` says which it was)."""
    if not hasattr(frame, "iloc"):  # a pyarrow Table
        return {f.name: {"dtype": str(f.type), "format": "arrow"} for f in frame.schema}
    columns = {}
    for name in frame.columns:
        values = frame[name].dropna()
        first = values.iloc[0] if len(values) else None
        columns[name] = {"dtype": str(frame[name].dtype), "value_type": type(first).__name__}
    return columns


def size_mb(frame: Any) -> float:
    """What the result takes in memory: a DataFrame's ``memory_usage(deep=True)``, a Table's buffers."""
    if hasattr(frame, "memory_usage"):
        return frame.memory_usage(deep=True).sum() / MB
    return frame.nbytes / MB


def follows_schema(schema: dict[str, str], columns: dict[str, dict[str, str]]) -> dict[str, bool]:
    """Each column: whether its type is what its Spark type gives (pandas dtypes, or Arrow types)."""
    return {
        name: (follows_spark_arrow_type if column.get("format") == "arrow" else follows_spark_type)(
            schema[name], column
        )
        for name, column in columns.items()
    }


def timed(
    transfer: Callable[[], Any], server_times: Callable[[], list[float]] | None, repetitions: int
) -> dict:
    """Run ``transfer`` (which returns the DataFrame, or a pyarrow Table) ``repetitions`` times,
    sampling this process's RSS; ``server_times`` gives the server seconds of each run's
    statements (None: the server does not say, and no server and client seconds are reported).

    The first run is the cold one (new process, JIT of the gateway's JVM still compiling the
    collect path): it is reported on its own, and the timing summary covers the warm runs after
    it. Memory counts every run, the cold one included. The previous DataFrame is dropped before
    each run, so each baseline is taken without it.
    """
    runs = []
    for _ in range(repetitions):
        frame = None
        gc.collect()
        with PeakRss() as memory:
            started = time.perf_counter()
            frame = transfer()
            seconds = time.perf_counter() - started
        run = {"seconds": seconds, "peak_increase_mb": memory.increase / MB, "rss_samples": memory.samples}
        if server_times is not None:
            run["server_s"] = sum(server_times())
        runs.append(run)
    warm = runs[1:] or runs
    seconds = summary([r["seconds"] for r in warm])
    frame_mb = size_mb(frame)
    peak = max(r["peak_increase_mb"] for r in runs)
    result = {
        "rows": len(frame),
        "runs": runs,
        "seconds": seconds,
        "first_seconds": runs[0]["seconds"],
        "rows_per_s": len(frame) / seconds["median"],
        "columns": columns_of(frame),
        "frame_mb": frame_mb,
        "peak_increase_mb": peak,
        "peak_over_frame": peak / frame_mb,
    }
    if len(runs) > 1:
        result["cold_over_warm"] = runs[0]["seconds"] / seconds["median"]
    if server_times is not None:
        result["server_s"] = summary([r["server_s"] for r in warm])
        result["client_s"] = summary([r["seconds"] - r["server_s"] for r in warm])
        result["first_server_s"] = runs[0]["server_s"]
        result["first_client_s"] = runs[0]["seconds"] - runs[0]["server_s"]
    return result


def new_statements(url: str, token: str, session_id: int) -> Callable[[], list[float]]:
    """A function that returns the server seconds of the session's statements since its last call."""
    last = max([-1, *(s["id"] for s in statement_times(url, token, session_id))])

    def since_last() -> list[float]:
        nonlocal last
        statements = statement_times(url, token, session_id, last)
        last = max([last, *(s["id"] for s in statements)])
        return [s["server_s"] for s in statements]

    return since_last


def ours(rows: int, repetitions: int) -> dict[str, Any]:
    """The real magic path: IPython shell, ``%load_ext``, ``%fabric attach``, ``%%sql -o``."""
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "prophecy_jupyter")
    shell.run_line_magic("fabric", f"attach {FABRIC}")
    try:
        shell.run_cell_magic("spark", "", setup_code(rows))
        shell.run_cell_magic("sql", "-o schema -n -1 -q", "DESCRIBE bench")
        described = shell.user_ns.pop("schema")
        magics = shell.magics_manager.registry["FabricMagics"]
        session_id = magics.backend.status(magics.notebook_id)[0]["remote_id"]

        def transfer() -> Any:
            shell.run_cell_magic("sql", "-o df -n -1 -q", QUERY)
            return shell.user_ns.pop("df")

        server = new_statements(os.environ[URL_ENV], os.environ[TOKEN_ENV], session_id)
        result = timed(transfer, server, repetitions)
        result["spark_schema"] = dict(zip(described["col_name"], described["data_type"], strict=True))
        return result
    finally:
        shell.run_line_magic("fabric", "detach")


def sparkmagic(rows: int, repetitions: int, conf_dir: Path) -> dict[str, Any]:
    """sparkmagic's ``%%sql -o df -n -1``: ``SQLQuery(..., samplemethod='take', maxrows=-1)``."""
    from benchmarks.common import sparkmagic as load

    sm = load(conf_dir)
    url, token = os.environ[URL_ENV], os.environ[TOKEN_ENV]
    session = sm.start_session(url, token)
    try:
        ok, output, _ = sm.Command(setup_code(rows)).execute(session)
        if not ok:
            raise RuntimeError(f"setting up the table failed: {output}")

        def transfer() -> Any:
            return sm.SQLQuery(QUERY, samplemethod="take", maxrows=-1).execute(session)

        return timed(transfer, new_statements(url, token, session.id), repetitions)
    finally:
        session.delete()


def connect(method: str, rows: int, repetitions: int) -> dict[str, Any]:
    """Spark Connect: the table made and cached in the client's own session (a Connect session has
    its own temp views), then ``spark.sql(QUERY).toPandas()`` or ``.toArrow()``."""
    import pyspark
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.remote(f"sc://127.0.0.1:{os.environ[CONNECT_PORT_ENV]}").getOrCreate()
    try:
        exec(setup_code(rows), {"spark": spark})  # not timed

        def transfer() -> Any:
            return getattr(spark.sql(QUERY), method)()

        result = timed(transfer, None, repetitions)
        described = spark.sql("DESCRIBE bench").collect()
        result["spark_schema"] = {row["col_name"]: row["data_type"] for row in described}
        result["method"] = method
        result["server_version"] = spark.version
        result["client_version"] = pyspark.__version__
        return result
    finally:
        spark.stop()


def measure_connect(
    method: str, key: str, rows: int, repetitions: int, driver_memory: str, timeout: float
) -> dict[str, Any]:
    """One Spark Connect client in a fresh process, on a fresh Spark Connect server (so that its cold
    transfer is the first of its JVM, as ours is the first of the gateway's)."""
    if not CONNECT_PYTHON.exists():
        raise RuntimeError(f"{CONNECT_PYTHON} is missing: `make bench` builds Spark Connect's client")
    started = time.perf_counter()
    with connect_server(driver_memory, f"transfer-{key}-server") as port:
        server_start = time.perf_counter() - started
        args = ["connect", "--method", method, "--rows", str(rows), "--repetitions", str(repetitions)]
        env = worker_env(**{CONNECT_PORT_ENV: str(port)})
        result, _, wall = run_worker(
            "benchmarks.transfer", args, env, timeout, f"transfer-{key}", CONNECT_PYTHON
        )
    result["process_wall_s"] = wall
    result["server_start_s"] = server_start
    return result


def measure_transfer(
    data_dir: Path,
    url: str,
    token: str,
    rows: int,
    sparkmagic_rows: int,
    repetitions: int,
    timeout: float,
    driver_memory: str = "4g",
) -> dict[str, Any]:
    """Ours and sparkmagic, each in a fresh process, on the same gateway (ours first); then Spark
    Connect's ``toPandas()`` and ``toArrow()``, each on a server of its own. A Spark Connect client
    that cannot run is reported in ``errors``; the others are still measured."""
    env = worker_env(data_dir, **{URL_ENV: url, TOKEN_ENV: token})
    results: dict[str, Any] = {}
    for client, count in (("ours", rows), ("sparkmagic", sparkmagic_rows)):
        args = [client, "--rows", str(count), "--repetitions", str(repetitions)]
        args += ["--conf-dir", str(data_dir / "sparkmagic-conf")]
        results[client], _, wall = run_worker("benchmarks.transfer", args, env, timeout, f"transfer-{client}")
        results[client]["process_wall_s"] = wall
    errors = {}
    for key, method in CONNECT_METHODS.items():
        try:
            results[key] = measure_connect(method, key, rows, repetitions, driver_memory, timeout)
        except Exception as exc:
            errors[key] = f"{type(exc).__name__}: {exc}"
    if errors:
        results["errors"] = errors
    schema = results["ours"]["spark_schema"]
    for client in ("ours", "sparkmagic", *CONNECT_METHODS):
        if client in results:
            results[client]["follows_schema"] = follows_schema(schema, results[client]["columns"])
    results["rows_per_s_ratio"] = results["ours"]["rows_per_s"] / results["sparkmagic"]["rows_per_s"]
    for key in CONNECT_METHODS:
        if key in results:
            results[f"rows_per_s_ours_over_{key}"] = (
                results["ours"]["rows_per_s"] / results[key]["rows_per_s"]
            )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("client", choices=["ours", "sparkmagic", "connect"])
    parser.add_argument("--method", choices=sorted(CONNECT_METHODS.values()), help="Spark Connect's")
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--repetitions", type=int, default=1)
    parser.add_argument("--conf-dir", type=Path, help="sparkmagic's SPARKMAGIC_CONF_DIR")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    if args.client == "ours":
        write_result(args.out, ours(args.rows, args.repetitions))
    elif args.client == "sparkmagic":
        write_result(args.out, sparkmagic(args.rows, args.repetitions, args.conf_dir))
    else:
        write_result(args.out, connect(args.method, args.rows, args.repetitions))


if __name__ == "__main__":
    main()
