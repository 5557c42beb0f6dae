"""Benchmark 2: ``%%sql -o`` of a cached Spark table into pandas, end to end, in a fresh client process.

Run as ``python -m benchmarks.transfer {ours,sparkmagic} --rows N --out FILE`` (the gateway's
URL and token come in ``BENCH_GATEWAY_URL`` and ``BENCH_GATEWAY_TOKEN``); :func:`measure_transfer`
starts both and compares them.
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
    FABRIC,
    MB,
    PeakRss,
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
URL_ENV = "BENCH_GATEWAY_URL"
TOKEN_ENV = "BENCH_GATEWAY_TOKEN"


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


def columns_of(frame: Any) -> dict[str, dict[str, str]]:
    """Each column's dtype, and the Python type of its first value (for object columns)."""
    columns = {}
    for name in frame.columns:
        values = frame[name].dropna()
        first = values.iloc[0] if len(values) else None
        columns[name] = {"dtype": str(frame[name].dtype), "value_type": type(first).__name__}
    return columns


def timed(transfer: Callable[[], Any], server_times: Callable[[], list[float]], repetitions: int) -> dict:
    """Run ``transfer`` (which returns the DataFrame) ``repetitions`` times, sampling this process's RSS.

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
        runs.append(
            {
                "seconds": seconds,
                "server_s": sum(server_times()),
                "peak_increase_mb": memory.increase / MB,
                "rss_samples": memory.samples,
            }
        )
    warm = runs[1:] or runs
    seconds = summary([r["seconds"] for r in warm])
    frame_mb = frame.memory_usage(deep=True).sum() / MB
    peak = max(r["peak_increase_mb"] for r in runs)
    return {
        "rows": len(frame),
        "runs": runs,
        "seconds": seconds,
        "first_seconds": runs[0]["seconds"],
        "rows_per_s": len(frame) / seconds["median"],
        "server_s": summary([r["server_s"] for r in warm]),
        "client_s": summary([r["seconds"] - r["server_s"] for r in warm]),
        "columns": columns_of(frame),
        "frame_mb": frame_mb,
        "peak_increase_mb": peak,
        "peak_over_frame": peak / frame_mb,
    }


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


def measure_transfer(
    data_dir: Path, url: str, token: str, rows: int, sparkmagic_rows: int, repetitions: int, timeout: float
) -> dict[str, Any]:
    """Both clients, each in a fresh process, on the same gateway; ours first."""
    env = worker_env(data_dir, **{URL_ENV: url, TOKEN_ENV: token})
    results: dict[str, Any] = {}
    for client, count in (("ours", rows), ("sparkmagic", sparkmagic_rows)):
        args = [client, "--rows", str(count), "--repetitions", str(repetitions)]
        args += ["--conf-dir", str(data_dir / "sparkmagic-conf")]
        results[client], _, wall = run_worker("benchmarks.transfer", args, env, timeout, f"transfer-{client}")
        results[client]["process_wall_s"] = wall
    schema = results["ours"]["spark_schema"]
    for client in ("ours", "sparkmagic"):
        columns = results[client]["columns"]
        results[client]["follows_schema"] = {
            name: follows_spark_type(schema[name], column) for name, column in columns.items()
        }
    results["rows_per_s_ratio"] = results["ours"]["rows_per_s"] / results["sparkmagic"]["rows_per_s"]
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("client", choices=["ours", "sparkmagic"])
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--repetitions", type=int, default=1)
    parser.add_argument("--conf-dir", type=Path, help="sparkmagic's SPARKMAGIC_CONF_DIR")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    if args.client == "ours":
        write_result(args.out, ours(args.rows, args.repetitions))
    else:
        write_result(args.out, sparkmagic(args.rows, args.repetitions, args.conf_dir))


if __name__ == "__main__":
    main()
