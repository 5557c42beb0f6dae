"""Benchmark 8: sending a local pandas DataFrame to a Spark fabric, then ``count()`` there.

Three clients, each in a fresh process, send the same 8-column frame (the columns of benchmark 2,
with the dtypes our ``%%sql -o`` gives them): ours, ``%%send -i pdf -n sent`` on our gateway as
a livy fabric; sparkmagic's ``%%send_to_spark -i pdf -t df -n sent`` on the same gateway, on
growing row counts within a time budget (it embeds the rows as JSON in the statement's code); and
Spark Connect's ``spark.createDataFrame(pdf)`` against a Spark Connect server started here from
.venv's pyspark, the client in an environment of its own (``.venv-connect``).

Run as ``python -m benchmarks.send {ours,sparkmagic,connect} --rows N --out FILE`` (the gateway's
URL and token come in ``BENCH_GATEWAY_URL`` and ``BENCH_GATEWAY_TOKEN``, the Connect server's port
in ``BENCH_CONNECT_PORT``); :func:`measure_send` starts the three and compares them.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
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
    summary,
    worker_env,
    write_result,
)

URL_ENV = "BENCH_GATEWAY_URL"
TOKEN_ENV = "BENCH_GATEWAY_TOKEN"
SPARKMAGIC_STEPS = (1_000, 10_000, 50_000, 100_000, 200_000, 500_000, 1_000_000)
"""Row counts sparkmagic sends in turn, while the next one is expected to fit in the budget."""
SPARKMAGIC_WARMUP_ROWS = 100
"""sparkmagic's first send (the session's first RDD job, which starts its Python workers): reported apart."""

# Each column: its Spark type in benchmark 2's table, and the pandas dtype our `%%sql -o` gives it
# (README's table: non-nullable `l` and `d` are numpy dtypes; `i`, and `b` (`%` may be null in
# Spark), are nullable, `Int32` and `boolean`; strings are `string`, dates and decimals
# Arrow-backed, timestamps in the session's zone, UTC on the benchmark's gateway).
COLUMNS: dict[str, tuple[str, str]] = {
    "l": ("bigint", "int64"),
    "i": ("int", "Int32"),
    "d": ("double", "float64"),
    "s": ("string", "string"),
    "b": ("boolean", "boolean"),
    "dt": ("date", "date32[day][pyarrow]"),
    "ts": ("timestamp", "datetime64[us, UTC]"),
    "dec": ("decimal(12,2)", "decimal128(12, 2)[pyarrow]"),
}

# Run where the sent DataFrame is `sent` (on the fabric, or in the Spark Connect client): its column
# types, then its first two rows (by `l`) as text, each value in a form that does not depend on the
# time zone of the process printing it. Not timed.
CHECK_CODE = """\
import datetime as _dt, decimal as _dec, json as _json
print('BENCH-TYPES ' + _json.dumps(dict(sent.dtypes)))
def _canon(v):
    if isinstance(v, _dt.datetime):
        return 'ts:%d' % round(v.timestamp())
    if isinstance(v, _dt.date):
        return 'date:' + v.isoformat()
    if isinstance(v, _dec.Decimal):
        return 'dec:' + str(v)
    return repr(v)
try:
    _rows = [r.asDict() for r in sent.where('l < 2').orderBy('l').collect()]
    print('BENCH-ROWS ' + _json.dumps([{k: _canon(v) for k, v in r.items()} for r in _rows]))
except Exception as _e:
    print('BENCH-ROWS ' + _json.dumps({'error': '%s: %s' % (type(_e).__name__, _e)}))
"""
EPOCH_2024 = 1_704_067_200  # 2024-01-01T00:00:00Z


def make_frame(rows: int, variant: int = 0) -> Any:
    """The benchmark's pandas DataFrame, built with numpy and pyarrow (no Python object per value).

    The values are benchmark 2's: ``l`` = row number, ``i`` its int32 with every 10th null, ``d`` =
    1.5 ``l``, ``s`` = ``'row-' || l``, ``b`` = ``l % 3 == 0``, ``dt`` = 2024-01-01 plus ``l % 3650``
    days, ``ts`` = 2024-01-01T00:00:00Z plus ``l`` s, ``dec`` = ``l / 100``. ``variant`` adds to
    ``d``, so that each repetition sends different bytes (Spark Connect skips uploading a chunk of
    rows its server has seen, by hash).
    """
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    ids = np.arange(rows, dtype=np.int64)
    ints = pd.array((ids % 1_000_000).astype(np.int32), dtype="Int32")
    ints[ids % 10 == 0] = pd.NA
    strings = pc.binary_join_element_wise("row-", pc.cast(pa.array(ids), pa.string()), "")
    days = (ids % 3650).astype(np.int32) + np.int32(EPOCH_2024 // 86_400)
    unscaled = np.zeros((rows, 2), dtype=np.int64)  # decimal128: little-endian low and high words
    unscaled[:, 0] = ids  # l / 100 at scale 2 is l unscaled
    decimals = pa.Array.from_buffers(pa.decimal128(12, 2), rows, [None, pa.py_buffer(unscaled)])
    seconds = (ids + EPOCH_2024) * 1_000_000
    return pd.DataFrame(
        {
            "l": ids,
            "i": ints,
            "d": ids.astype(np.float64) * 1.5 + variant,
            "s": pd.arrays.ArrowStringArray(strings),
            "b": pd.array(ids % 3 == 0, dtype="boolean"),
            "dt": pd.arrays.ArrowExtensionArray(pa.array(days).cast(pa.date32())),
            "ts": pd.DatetimeIndex(seconds.astype("datetime64[us]")).tz_localize("UTC"),
            "dec": pd.arrays.ArrowExtensionArray(decimals),
        }
    )


def expected_rows(variant: int) -> list[dict[str, str]]:
    """What :data:`CHECK_CODE` prints for rows 0 and 1 of ``make_frame(rows, variant)``."""
    return [
        {
            "l": repr(n),
            "i": "None" if n == 0 else repr(n),
            "d": repr(n * 1.5 + variant),
            "s": repr(f"row-{n}"),
            "b": repr(n % 3 == 0),
            "dt": f"date:2024-01-0{n + 1}",
            "ts": f"ts:{EPOCH_2024 + n}",
            "dec": f"dec:0.0{n}",
        }
        for n in (0, 1)
    ]


def check(output: str, variant: int) -> dict[str, Any]:
    """Each column's Spark type and whether it is benchmark 2's, and whether its values are right."""
    found = {}
    for line in output.splitlines():
        tag, _, rest = line.partition(" ")
        if tag in ("BENCH-TYPES", "BENCH-ROWS"):
            found[tag] = json.loads(rest)
    if "BENCH-TYPES" not in found:
        raise RuntimeError(f"the check printed no types: {output[-2000:]}")
    spark_types: dict[str, str] = found["BENCH-TYPES"]
    rows = found.get("BENCH-ROWS", {"error": "nothing printed"})
    wanted = expected_rows(variant)
    got = rows if isinstance(rows, list) else []
    values_right = {
        name: len(got) == len(wanted)
        and all(g.get(name) == w[name] for g, w in zip(got, wanted, strict=True))
        for name in COLUMNS
    }
    return {
        "spark_types": spark_types,
        "types_right": {name: spark_types.get(name) == want for name, (want, _) in COLUMNS.items()},
        "values_right": values_right,
        "rows_seen": rows,
    }


def printed_count(output: str) -> int:
    """The count a ``print(sent.count())`` printed: the last line that is a number."""
    numbers = [line.strip() for line in output.splitlines() if line.strip().isdigit()]
    if not numbers:
        raise RuntimeError(f"no count was printed: {output[-2000:]}")
    return int(numbers[-1])


def timed_sends(
    prepare: Callable[[int], None], send: Callable[[], tuple[float, float, int]], rows: int, repetitions: int
) -> dict[str, Any]:
    """``prepare(variant)`` (not timed: it makes frame ``variant``), then ``send()``, which sends it
    and counts it there and returns the seconds of each and the count; ``repetitions`` times, with
    this process's RSS sampled during ``send()``.

    The first run is the cold one and is reported on its own; the summary covers the runs after it.
    """
    runs = []
    for variant in range(repetitions):
        prepare(variant)
        gc.collect()
        with PeakRss() as memory:
            send_s, count_s, count = send()
        if count != rows:
            raise RuntimeError(f"sent {rows} rows, but count() says {count}")
        runs.append(
            {
                "seconds": send_s + count_s,
                "send_s": send_s,
                "count_s": count_s,
                "count": count,
                "peak_increase_mb": memory.increase / MB,
            }
        )
    warm = runs[1:] or runs
    seconds = summary([r["seconds"] for r in warm])
    return {
        "rows": rows,
        "runs": runs,
        "seconds": seconds,
        "first_seconds": runs[0]["seconds"],
        "rows_per_s": rows / seconds["median"],
        "send_s": summary([r["send_s"] for r in warm]),
        "count_s": summary([r["count_s"] for r in warm]),
        "peak_increase_mb": max(r["peak_increase_mb"] for r in runs),
        "last_variant": repetitions - 1,
    }


# -- the clients (each runs in a worker process) -------------------------------------------------


def send_cell(shell: Any, line: str) -> None:
    """A ``%%send LINE`` cell with no body. IPython refuses to run a cell magic whose body is empty,
    so this is ``%send LINE`` when ``send`` is a line magic too (what such a cell is meant as)."""
    if shell.find_line_magic("send") is not None:
        shell.run_line_magic("send", line)
    else:
        shell.run_cell_magic("send", line, "\n")


def ours(rows: int, repetitions: int) -> dict[str, Any]:
    """The real magic path: IPython shell, ``%load_ext``, ``%fabric attach``, ``%%send``, ``%%spark``."""
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    from benchmarks.transfer import new_statements

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "prophecy_jupyter")
    if shell.find_cell_magic("send") is None:
        raise RuntimeError("prophecy_jupyter has no %%send magic (yet)")
    shell.run_line_magic("fabric", f"attach {FABRIC}")
    try:
        shell.run_cell_magic("spark", "", "print(spark.version)")  # the session starts: not timed
        magics = shell.magics_manager.registry["FabricMagics"]
        session_id = magics.backend.status(magics.notebook_id)[0]["remote_id"]
        server = new_statements(os.environ[URL_ENV], os.environ[TOKEN_ENV], session_id)
        server_s: list[float] = []

        def prepare(variant: int) -> None:
            shell.user_ns["pdf"] = None
            shell.user_ns["pdf"] = make_frame(rows, variant)

        def send() -> tuple[float, float, int]:
            with capture_output() as out:
                started = time.perf_counter()
                send_cell(shell, "-i pdf -n sent")
                sent = time.perf_counter()
                shell.run_cell_magic("spark", "", "print(sent.count())")
                counted = time.perf_counter()
            server_s.append(sum(server()))
            return sent - started, counted - sent, printed_count(out.stdout)

        server()  # the warm-up statement is not counted
        result = timed_sends(prepare, send, rows, repetitions)
        result["server_s"] = summary(server_s[1:] or server_s)
        with capture_output() as out:
            shell.run_cell_magic("spark", "", CHECK_CODE)
        result |= check(out.stdout, result["last_variant"])
        return result
    finally:
        shell.run_line_magic("fabric", "detach")


def predicted_seconds(done: list[dict[str, Any]], rows: int) -> float:
    """How long sending ``rows`` should take, from the sends so far: a straight line through the
    last two (fixed cost plus a cost per row), or in proportion to the only one."""
    if not done:
        return 0.0
    last = done[-1]
    if len(done) >= 2:
        before = done[-2]
        per_row = (last["seconds"] - before["seconds"]) / (last["rows"] - before["rows"])
        if per_row > 0:
            return max(last["seconds"], last["seconds"] + per_row * (rows - last["rows"]))
    return last["seconds"] * rows / last["rows"]


def sparkmagic(rows: int, budget: float, conf_dir: Path) -> dict[str, Any]:
    """``%%send_to_spark -i pdf -t df -n sent -m N`` (``SendPandasDfToSparkCommand(...).execute``)
    then ``print(sent.count())``: once on :data:`SPARKMAGIC_WARMUP_ROWS` rows (the cold send), then
    for growing N while the next send is expected to fit in ``budget`` seconds of sending in all."""
    from benchmarks.common import sparkmagic as load
    from benchmarks.transfer import new_statements

    sm = load(conf_dir)
    url, token = os.environ[URL_ENV], os.environ[TOKEN_ENV]
    session = sm.start_session(url, token)
    try:
        ok, output, _ = sm.Command("print(spark.version)").execute(session)
        if not ok:
            raise RuntimeError(f"the warm-up statement failed: {output}")
        server = new_statements(url, token, session.id)
        frame = make_frame(rows)

        def send(n: int) -> dict[str, Any]:
            gc.collect()
            with PeakRss() as memory:
                started = time.perf_counter()
                try:
                    ok, output, _ = sm.SendPandasDfToSparkCommand("pdf", frame, "sent", n).execute(session)
                    send_s = time.perf_counter() - started
                    if ok:
                        ok, output, _ = sm.Command("print(sent.count())").execute(session)
                except Exception as exc:  # e.g. the gateway refusing a statement over its size limit
                    ok, output = False, f"{type(exc).__name__}: {exc}"
                seconds = time.perf_counter() - started
            if not ok:
                code_mb = len(frame.head(n).to_json(orient="records")) / MB  # the rows' part of the code
                return {"rows": n, "seconds": seconds, "error": str(output)[-2000:], "json_mb": code_mb}
            count = printed_count(output)
            if count != n:
                raise RuntimeError(f"sent {n} rows, but count() says {count}")
            return {
                "rows": n,
                "seconds": seconds,
                "send_s": send_s,
                "count_s": seconds - send_s,
                "rows_per_s": n / seconds,
                "server_s": sum(server()),
                "peak_increase_mb": memory.increase / MB,
            }

        first = send(min(SPARKMAGIC_WARMUP_ROWS, rows))
        if "error" in first:
            raise RuntimeError(f"sparkmagic's first send failed: {first['error']}")
        spent, stopped = first["seconds"], None
        runs: list[dict[str, Any]] = []
        for n in [n for n in SPARKMAGIC_STEPS if n < rows] + [rows]:
            expected = predicted_seconds(runs, n)
            if spent + expected > budget:
                stopped = f"{n:,} rows would take about {expected:.0f} s more (budget {budget:.0f} s)"
                break
            run = send(n)
            spent += run["seconds"]
            runs.append(run)
            if "error" in run:
                stopped = f"sending {n:,} rows failed"
                break
        done = [r for r in runs if "error" not in r]
        if not done:
            raise RuntimeError(f"sparkmagic sent nothing after its first send: {runs}")
        fastest = max(done, key=lambda r: r["rows_per_s"])
        ok, output, _ = sm.Command(CHECK_CODE).execute(session)  # on the last frame it sent
        if not ok:
            raise RuntimeError(f"the check failed: {output}")
        return {
            "first": first,
            "steps": runs,
            "stopped": stopped or "every step was sent",
            "budget_s": budget,
            "spent_s": spent,
            "rows": fastest["rows"],
            "seconds": fastest["seconds"],
            "rows_per_s": fastest["rows_per_s"],
            "largest_rows": done[-1]["rows"],
            "peak_increase_mb": max(r["peak_increase_mb"] for r in done),
            **check(output, 0),
        }
    finally:
        session.delete()


def connect(rows: int, repetitions: int) -> dict[str, Any]:
    """Spark Connect: ``spark.createDataFrame(pdf)`` then ``.count()``, on a fresh client session."""
    import pyspark
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.remote(f"sc://127.0.0.1:{os.environ[CONNECT_PORT_ENV]}").getOrCreate()
    try:
        spark.range(1).count()  # the session is made on the server: not timed
        frames: dict[str, Any] = {}

        def prepare(variant: int) -> None:
            frames.clear()
            frames["pdf"] = make_frame(rows, variant)

        def send() -> tuple[float, float, int]:
            started = time.perf_counter()
            frames["sent"] = spark.createDataFrame(frames["pdf"])
            sent = time.perf_counter()
            count = frames["sent"].count()
            return sent - started, time.perf_counter() - sent, count

        result = timed_sends(prepare, send, rows, repetitions)
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(CHECK_CODE, {"sent": frames["sent"]})
        result |= check(printed.getvalue(), result["last_variant"])
        plan = frames["sent"]._plan
        while getattr(plan, "_child", None) is not None:  # below the ToDF naming the columns
            plan = plan._child
        result["plan"] = type(plan).__name__  # LocalRelation (the rows inline) or uploaded as chunks
        result["cache_threshold"] = spark.conf.get("spark.sql.session.localRelationCacheThreshold")
        result["server_version"] = spark.version
        result["client_version"] = pyspark.__version__
        return result
    finally:
        spark.stop()


# -- the parent --------------------------------------------------------------------------------


def measure_send(
    data_dir: Path,
    url: str,
    token: str,
    rows: int,
    repetitions: int,
    sparkmagic_budget: float,
    driver_memory: str,
    timeout: float,
) -> dict[str, Any]:
    """The three clients, each in a fresh process: ours and sparkmagic on the gateway at ``url``
    (registered as fabric ``gw`` in ``data_dir``), then Spark Connect on a server of its own."""
    frame = make_frame(rows)
    made = {name: str(frame[name].dtype) for name in COLUMNS}
    if made != {name: dtype for name, (_, dtype) in COLUMNS.items()}:
        raise RuntimeError(f"the frame's dtypes are not the ones our %%sql -o gives: {made}")
    results: dict[str, Any] = {
        "rows": rows,
        "repetitions": repetitions,
        "columns": {
            name: {"spark": spark, "pandas": str(frame[name].dtype)} for name, (spark, _) in COLUMNS.items()
        },
        "frame_mb": frame.memory_usage(deep=True).sum() / MB,
    }
    del frame
    env = worker_env(data_dir, **{URL_ENV: url, TOKEN_ENV: token})
    workers = {
        "ours": ["--repetitions", str(repetitions)],
        "sparkmagic": ["--budget", str(sparkmagic_budget), "--conf-dir", str(data_dir / "sparkmagic-conf")],
    }
    errors = {}
    for client, args in workers.items():
        try:
            results[client], _, wall = run_worker(
                "benchmarks.send", [client, "--rows", str(rows), *args], env, timeout, f"send-{client}"
            )
            results[client]["process_wall_s"] = wall
        except Exception as exc:
            errors[client] = f"{type(exc).__name__}: {exc}"
    try:
        if not CONNECT_PYTHON.exists():
            raise RuntimeError(f"{CONNECT_PYTHON} is missing: `make bench` builds Spark Connect's client")
        started = time.perf_counter()
        with connect_server(driver_memory, "send-connect-server") as port:
            results["connect_server_start_s"] = time.perf_counter() - started
            args = ["connect", "--rows", str(rows), "--repetitions", str(repetitions)]
            connect_env = worker_env(**{CONNECT_PORT_ENV: str(port)})
            results["connect"], _, wall = run_worker(
                "benchmarks.send", args, connect_env, timeout, "send-connect", CONNECT_PYTHON
            )
            results["connect"]["process_wall_s"] = wall
    except Exception as exc:
        errors["connect"] = f"{type(exc).__name__}: {exc}"
    if errors:
        results["errors"] = errors
    for client in ("sparkmagic", "connect"):
        if "ours" in results and client in results:
            results[f"rows_per_s_ours_over_{client}"] = (
                results["ours"]["rows_per_s"] / results[client]["rows_per_s"]
            )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("client", choices=["ours", "sparkmagic", "connect"])
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--repetitions", type=int, default=1)
    parser.add_argument("--budget", type=float, default=60.0, help="sparkmagic's seconds of sending")
    parser.add_argument("--conf-dir", type=Path, help="sparkmagic's SPARKMAGIC_CONF_DIR")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    if args.client == "ours":
        result = ours(args.rows, args.repetitions)
    elif args.client == "sparkmagic":
        result = sparkmagic(args.rows, args.budget, args.conf_dir)
    else:
        result = connect(args.rows, args.repetitions)
    write_result(args.out, result)


if __name__ == "__main__":
    main()
