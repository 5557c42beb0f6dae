"""Benchmark 7: ``%%sql -o`` of a Snowflake table into pandas, end to end, in a fresh client process:
ours on a snowflake fabric, jupysql with snowflake-sqlalchemy (the Jupyter incumbent for
Snowflake SQL, in an environment of its own as its users have it) and the bare connector's
``fetch_pandas_all()`` (the floor), all reading the same table from the same fakesnow server.

Run as ``python -m benchmarks.snowflake_sql {ours,connector,jupysql} --out FILE`` (the
server's port comes in ``BENCH_SNOWFLAKE_PORT``); :func:`measure_snowflake` makes the table, starts
the three and compares them.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

from benchmarks.common import REPO, run_worker, summary, worker_env, write_result
from benchmarks.transfer import timed

PORT_ENV = "BENCH_SNOWFLAKE_PORT"
FABRIC = "sf"
USER, PASSWORD = "bench", "bench-password"
TABLE = "BENCH.PUBLIC.BIG"
QUERY = f"SELECT * FROM {TABLE}"
INCUMBENT_PYTHON = REPO / ".venv-jupysql" / "bin" / "python"
"""jupysql's environment (``make bench`` builds it): snowflake-sqlalchemy 1.x needs SQLAlchemy 2.0."""
# Each column's Snowflake type, how it is made, and the pandas dtypes that keep its values and type
# exactly (for object columns, with the Python type of the values).
COLUMNS: dict[str, tuple[str, str, tuple[str, ...], str | None]] = {
    "ID": ("NUMBER(18,0)", "seq4()::number(18,0)", ("Int64", "int64"), None),
    "SMALL": (
        "NUMBER(9,0), with NULLs",
        "iff(seq4() % 10 = 0, null, seq4() % 1000)::number(9,0)",
        ("Int32", "Int64"),
        None,
    ),
    "AMOUNT": (
        "NUMBER(12,2)",
        "(seq4() * 1.25)::number(12,2)",
        ("decimal128(12, 2)[pyarrow]", "object"),
        "Decimal",
    ),
    "RATIO": ("FLOAT", "(seq4() * 0.5)::float", ("float64", "Float64"), None),
    "LABEL": ("VARCHAR", "'row-' || seq4()", ("string", "object"), "str"),
    "EVEN": ("BOOLEAN", "seq4() % 2 = 0", ("boolean", "bool"), None),
    "DAY": (
        "DATE",
        "dateadd(day, seq4() % 3650, '2024-01-01'::date)",
        ("object", "date32[day][pyarrow]"),
        "date",
    ),
    "TS": (
        "TIMESTAMP_NTZ",
        "dateadd(second, seq4(), '2024-01-01 00:00:00'::timestamp_ntz)",
        ("datetime64[ns]", "datetime64[us]"),
        None,
    ),
}


def create_table(port: int, rows: int) -> None:
    """The benchmark's table, ``rows`` rows of the eight columns, made with the connector."""
    import snowflake.connector

    connection = snowflake.connector.connect(**connect_args(port))
    try:
        cursor = connection.cursor()
        cursor.execute("CREATE DATABASE IF NOT EXISTS BENCH")
        cursor.execute("CREATE SCHEMA IF NOT EXISTS BENCH.PUBLIC")
        made = ", ".join(f"{how} AS {name}" for name, (_, how, _, _) in COLUMNS.items())
        cursor.execute(
            f"CREATE OR REPLACE TABLE {TABLE} AS SELECT {made} FROM TABLE(GENERATOR(ROWCOUNT => {rows}))"
        )
    finally:
        connection.close()


def connect_args(port: int) -> dict[str, Any]:
    """The connector's arguments for the stand-in (no telemetry: it has nowhere to go)."""
    return {
        "account": "bench",
        "user": USER,
        "password": PASSWORD,
        "host": "127.0.0.1",
        "port": port,
        "protocol": "http",
        "database": "BENCH",
        "schema": "PUBLIC",
        "session_parameters": {"CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False},
    }


def follows_type(name: str, column: dict[str, str]) -> bool:
    """Whether a column's dtype (and value type) keeps its Snowflake type's values exactly."""
    _, _, dtypes, value_type = COLUMNS[name.upper()]  # SQLAlchemy gives the names in lower case
    if column["dtype"] not in dtypes:
        return False
    return column["dtype"] != "object" or value_type == column["value_type"]


def no_server_times() -> list[float]:
    """The stand-in does not report a query's server time: the whole wall time is counted."""
    return []


def ours(repetitions: int) -> dict[str, Any]:
    """The real magic path: IPython shell, ``%load_ext``, ``%fabric attach``, ``%%sql -o``."""
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "prophecy_jupyter")
    shell.run_line_magic("fabric", f"attach {FABRIC}")
    try:

        def transfer() -> Any:
            shell.run_cell_magic("sql", "-o df -n -1 -q", QUERY)
            return shell.user_ns.pop("df")

        return timed(transfer, no_server_times, repetitions)
    finally:
        shell.run_line_magic("fabric", "detach")


def connector(port: int, repetitions: int) -> dict[str, Any]:
    """The floor: one connection, ``cursor.execute(query).fetch_pandas_all()``; the time of
    ``execute`` alone (the stand-in's answer, which every client waits for) is kept too."""
    import snowflake.connector

    connection = snowflake.connector.connect(**connect_args(port))
    executes: list[float] = []

    def transfer() -> Any:
        started = time.perf_counter()
        cursor = connection.cursor().execute(QUERY)
        executes.append(time.perf_counter() - started)
        return cursor.fetch_pandas_all()

    try:
        result = timed(transfer, no_server_times, repetitions)
    finally:
        connection.close()
    result["execute_s"] = summary(executes[1:] or executes)  # the stand-in's answer, fetched and parsed
    return result


def jupysql(port: int, repetitions: int) -> dict[str, Any]:
    """jupysql's ``%sql`` with ``autopandas`` (its documented way to a DataFrame) over a
    snowflake-sqlalchemy engine, with no display limit so that every row is fetched."""
    os.environ["PLOOMBER_STATS_ENABLED"] = "false"  # no telemetry calls from the worker
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "sql")
    shell.run_line_magic("config", "SqlMagic.autopandas = True")
    shell.run_line_magic("config", "SqlMagic.displaylimit = 0")
    from sqlalchemy import create_engine

    where = {"host": "127.0.0.1", "port": port, "protocol": "http"}  # not in the URL: the dialect refuses it
    shell.user_ns["engine"] = create_engine(
        f"snowflake://{USER}:{PASSWORD}@bench/BENCH/PUBLIC", connect_args=where
    )
    shell.run_line_magic("sql", "engine")
    return timed(lambda: shell.run_line_magic("sql", QUERY), no_server_times, repetitions)


def add_fabric(data_dir: Path, port: int) -> None:
    """A snowflake fabric on the stand-in with the user's password, as a user adds one."""
    from prophecy_jupyter.environment import local_username
    from prophecy_jupyter.services.runtime import build_services

    user = local_username()
    built = build_services(data_dir, bootstrap_user=user)
    try:
        settings = {"account": "bench", "user": USER, "host": "127.0.0.1", "port": port, "protocol": "http"}
        settings |= {"database": "BENCH", "schema": "PUBLIC", "auth": "password"}
        fabric = built.fabrics.create(
            user, "default", {"name": FABRIC, "kind": "snowflake", "settings": settings}
        )
        built.credentials.set(user, fabric, PASSWORD)
    finally:
        built.close()


def measure_snowflake(scratch: Path, rows: int, repetitions: int, timeout: float) -> dict[str, Any]:
    """The three clients, each in a fresh process, on one fakesnow server; ours first."""
    from tests.servers.snowflake import fakesnow_server

    if not INCUMBENT_PYTHON.exists():
        raise RuntimeError(f"{INCUMBENT_PYTHON} is missing: `make bench` builds jupysql's environment")
    data_dir = scratch / "data-snowflake"
    results: dict[str, Any] = {"rows": rows, "types": {name: c[0] for name, c in COLUMNS.items()}}
    with fakesnow_server() as url:
        port = int(url.rsplit(":", 1)[1])
        started = time.perf_counter()
        create_table(port, rows)
        results["create_table_s"] = time.perf_counter() - started
        add_fabric(data_dir, port)
        env = worker_env(data_dir, **{PORT_ENV: str(port), "PLOOMBER_STATS_ENABLED": "false"})
        for client, python in (("ours", None), ("connector", None), ("jupysql", INCUMBENT_PYTHON)):
            args = [client, "--repetitions", str(repetitions)]
            log = f"snowflake-{client}"
            result, _, wall = run_worker("benchmarks.snowflake_sql", args, env, timeout, log, python)
            result["process_wall_s"] = wall
            result["follows_type"] = {name: follows_type(name, c) for name, c in result["columns"].items()}
            results[client] = result
    for client in ("connector", "jupysql"):
        results[f"rows_per_s_ours_over_{client}"] = (
            results["ours"]["rows_per_s"] / results[client]["rows_per_s"]
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("client", choices=["ours", "connector", "jupysql"])
    parser.add_argument("--repetitions", type=int, default=1)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    port = int(os.environ[PORT_ENV])
    if args.client == "ours":
        result = ours(args.repetitions)
    elif args.client == "connector":
        result = connector(port, args.repetitions)
    else:
        result = jupysql(port, args.repetitions)
    write_result(args.out, result)


if __name__ == "__main__":
    main()
