"""The goals the benchmarks are held to, and the Markdown tables of a run."""

from __future__ import annotations

from typing import Any

from benchmarks.control_plane import goals as control_plane_goals
from benchmarks.control_plane import table as control_plane_table

LATENCY_GOAL_MS = 20.0
POLLING_GOAL_MS, POLLING_GOAL_SHARE = 10.0, 0.10
MEMORY_GOAL = 2.0
THROUGHPUT_GOAL = 20.0
FIRST_GOAL_S = 1.0
FURTHER_READY_GOAL_S = 2.0
FURTHER_MB = 250.0
QUICKSTART_GOAL_S = 1.0
SERVER_P99_GOAL_MS = 50.0
LOOP_LAG_GOAL_MS = 50.0
CACHE_OVER_CLONE_GOAL = 10.0
CACHE_THROUGHPUT_GOAL_MB_S = 500.0
SNOWFLAKE_OVER_CONNECTOR_GOAL = 0.8
SNOWFLAKE_OVER_JUPYSQL_GOAL = 5.0
SEND_OVER_SPARKMAGIC_GOAL = 50.0
TRANSFER_OVER_CONNECT_GOAL = 1.0
COLD_OVER_WARM_GOAL = 1.3
TRANSFER_CLIENTS = {
    "ours": ("ours", "ours"),
    "sparkmagic": ("sparkmagic", "sparkmagic"),
    "connect_topandas": ("Spark Connect toPandas", "Spark Connect, `toPandas()`"),
    "connect_toarrow": ("Spark Connect toArrow", "Spark Connect, `toArrow()` (a pyarrow Table)"),
}
"""Each client of benchmark 2: its name in the Goals table, and its row in the tables."""
SEND_OVER_CONNECT_GOAL = 1.0
SEND_CLIENTS = {
    "ours": ("ours", "ours, `%%send -i pdf -n sent`"),
    "sparkmagic": ("sparkmagic", "sparkmagic, `%%send_to_spark -i pdf -t df -n sent -m N`"),
    "connect": ("Spark Connect", "Spark Connect, `spark.createDataFrame(pdf)`"),
}
"""Each client of benchmark 8: its name in the Goals table, and its row in the tables."""


def failed(result: dict[str, Any]) -> bool:
    """Whether a benchmark, or one of its clients, could not run."""
    return "error" in result or bool(result.get("errors"))


def assess(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each goal with the measured value and whether it is met."""
    # benchmark, measure, value, limit (None: reported, no goal), unit
    checks: list[tuple[str, str, float, float | None, str]] = []
    at_least = {
        "rows/s, ours / sparkmagic",
        "rows/s, ours / Spark Connect toPandas",
        "ours: columns typed as the Spark schema",
        "open a pipeline: fresh clone / cache",
        "cache encryption (AES-GCM seal) MB/s",
        "rows/s, ours / bare connector",
        "rows/s, ours / jupysql",
        "ours: columns typed as Snowflake's",
        "send rows/s, ours / sparkmagic",
        "send rows/s, ours / Spark Connect",
        "ours: types right out of 8",
    }
    results = {k: v for k, v in results.items() if isinstance(v, dict) and "error" not in v}
    if latency := results.get("latency"):
        clients = latency["clients"]
        for sleep, row in clients["ours-long-poll"]["by_sleep"].items():
            measure = f"ours, long poll, sleep({sleep}): median added"
            checks.append(("latency", measure, row["added_ms"]["median"], LATENCY_GOAL_MS, "ms"))
        for sleep, row in clients["ours-polling"]["by_sleep"].items():
            limit = POLLING_GOAL_MS + POLLING_GOAL_SHARE * row["server_s"]["median"] * 1000
            measure = f"ours, polling only, sleep({sleep}): median added"
            checks.append(("latency", measure, row["added_ms"]["median"], limit, "ms"))
    if transfer := results.get("transfer"):
        ours = transfer["ours"]
        typed, columns = sum(ours["follows_schema"].values()), len(ours["follows_schema"])
        checks += [
            ("transfer", "ours: columns typed as the Spark schema", typed, columns, "columns"),
            (
                "transfer",
                "ours: peak RSS increase / DataFrame size",
                ours["peak_over_frame"],
                MEMORY_GOAL,
                "x",
            ),
            ("transfer", "rows/s, ours / sparkmagic", transfer["rows_per_s_ratio"], THROUGHPUT_GOAL, "x"),
        ]
        if "cold_over_warm" in ours:
            checks.append(("transfer", "ours: cold / warm", ours["cold_over_warm"], COLD_OVER_WARM_GOAL, "x"))
        for client, goal in (("connect_topandas", TRANSFER_OVER_CONNECT_GOAL), ("connect_toarrow", None)):
            name = TRANSFER_CLIENTS[client][0]
            if f"rows_per_s_ours_over_{client}" in transfer:
                ratio = transfer[f"rows_per_s_ours_over_{client}"]
                checks.append(("transfer", f"rows/s, ours / {name}", ratio, goal, "x"))
            if client in transfer:
                typed = transfer[client]["follows_schema"]
                measure = f"{name}: columns typed as the Spark schema"
                checks.append(("transfer", measure, sum(typed.values()), None, "columns"))
    if startup := results.get("startup"):
        bare = startup["bare"]["launch_to_ready_s"]["median"]
        further = startup["ours_further"]
        for key, when in (("ours_first", "first start"), ("ours-archived_first", "later starts")):
            if key in startup:
                gap = startup[key]["launch_to_ready_s"]["median"] - bare
                measure = f"first session minus bare SparkSession (launch to ready), {when}"
                checks.append(("startup", measure, gap, FIRST_GOAL_S, "s"))
        checks += [
            (
                "startup",
                "further session ready (worst)",
                further["ready_s"]["max"],
                FURTHER_READY_GOAL_S,
                "s",
            ),
            (
                "startup",
                "further session added RSS (worst)",
                further["added_rss_mb"]["max"],
                FURTHER_MB,
                "MB",
            ),
        ]
        if (quickstart := startup.get("quickstart")) and "error" not in quickstart:
            for variant, when in (("auto", "first start"), ("auto-archived", "later starts")):
                if variant in quickstart:
                    first_cell = quickstart[variant]["after_kernel_ready_s"]["median"]
                    measure = f"quickstart first %%spark cell after kernel ready, {when}"
                    checks.append(("startup", measure, first_cell, QUICKSTART_GOAL_S, "s"))
    if concurrency := results.get("concurrency"):
        for phase, ours in concurrency["ours"]["phases"].items():
            checks += [
                ("concurrency", f"ours, {phase}: failed statements", ours["failures"], 0, ""),
                (
                    "concurrency",
                    f"ours, {phase}: p99 latency added by the server",
                    ours["added_by_server_ms"]["p99"],
                    SERVER_P99_GOAL_MS,
                    "ms",
                ),
                (
                    "concurrency",
                    f"ours, {phase}: longest event-loop lag",
                    ours["loop_lag_ms"]["max"],
                    LOOP_LAG_GOAL_MS,
                    "ms",
                ),
            ]
    if databricks := results.get("databricks"):
        for sleep, added in databricks["ours_over_floor_ms"].items():
            measure = f"ours on databricks, sleep({sleep}): median added over the floor"
            checks.append(("databricks", measure, added, LATENCY_GOAL_MS, "ms"))
    if git := results.get("git"):
        checks += [
            (
                "git",
                "open a pipeline: fresh clone / cache",
                git["clone_over_cache"],
                CACHE_OVER_CLONE_GOAL,
                "x",
            ),
            (
                "git",
                "cache encryption (AES-GCM seal) MB/s",
                git["throughput"]["seal"]["median"],
                CACHE_THROUGHPUT_GOAL_MB_S,
                "MB/s",
            ),
        ]
    if snowflake := results.get("snowflake"):
        typed = snowflake["ours"]["follows_type"]
        checks += [
            (
                "snowflake",
                "rows/s, ours / bare connector",
                snowflake["rows_per_s_ours_over_connector"],
                SNOWFLAKE_OVER_CONNECTOR_GOAL,
                "x",
            ),
            (
                "snowflake",
                "rows/s, ours / jupysql",
                snowflake["rows_per_s_ours_over_jupysql"],
                SNOWFLAKE_OVER_JUPYSQL_GOAL,
                "x",
            ),
            ("snowflake", "ours: columns typed as Snowflake's", sum(typed.values()), len(typed), "columns"),
        ]
    if send := results.get("send"):
        for client, ratio_key, goal in (
            ("sparkmagic", "rows_per_s_ours_over_sparkmagic", SEND_OVER_SPARKMAGIC_GOAL),
            ("connect", "rows_per_s_ours_over_connect", SEND_OVER_CONNECT_GOAL),
        ):
            if ratio_key in send:
                measure = f"send rows/s, ours / {SEND_CLIENTS[client][0]}"
                checks.append(("send", measure, send[ratio_key], goal, "x"))
        for client, (name, _) in SEND_CLIENTS.items():
            if client in send:
                typed = send[client]["types_right"]
                limit = len(typed) if client == "ours" else None
                checks.append(
                    ("send", f"{name}: types right out of 8", sum(typed.values()), limit, "columns")
                )
    if control := results.get("control-plane"):
        for measure, value, limit, unit, at_least_goal in control_plane_goals(control):
            checks.append(("control-plane", measure, value, limit, unit))
            if at_least_goal:
                at_least.add(measure)
    return [
        {
            "benchmark": benchmark,
            "measure": measure,
            "value": value,
            "unit": unit,
            "goal": "-" if limit is None else f"{'>=' if measure in at_least else '<='} {limit:.3g} {unit}",
            "met": None if limit is None else value >= limit if measure in at_least else value <= limit,
        }
        for benchmark, measure, value, limit, unit in checks
    ]


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _mark(met: bool | None) -> str:
    return "-" if met is None else "yes" if met else "**no**"


def _latency_rows(clients: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    rows = []
    for name, client in clients.items():
        for sleep, row in client["by_sleep"].items():
            polls = row.get("polls")
            rows.append(
                [
                    name,
                    f"`time.sleep({sleep})`",
                    f"{row['server_s']['median']:.3f}",
                    f"{row['wall_s']['median']:.3f}",
                    f"{row['added_ms']['median']:.1f}",
                    f"{row['added_ms']['p90']:.1f}",
                    f"{polls['median']:g} (max {polls['max']:g})" if polls else "-",
                ]
            )
    header = ["client", "statement", "server s", "wall s", "added ms (median)", "added ms (p90)", "polls"]
    return header, rows


def latency_table(latency: dict[str, Any]) -> str:
    header, rows = _latency_rows(latency["clients"])
    ours = latency["clients"]["ours-long-poll"]["by_sleep"]
    theirs = latency["clients"]["sparkmagic"]["by_sleep"]
    ratios = ", ".join(
        f"sleep({s}): {theirs[s]['added_ms']['median'] / max(ours[s]['added_ms']['median'], 0.1):.0f}x"
        for s in ours
    )
    note = (
        f"{latency['repetitions']} repetitions per statement, clients taking turns. "
        f"sparkmagic's median added latency over ours (long poll): {ratios}."
    )
    return _table(header, rows) + "\n\n" + note


def databricks_table(databricks: dict[str, Any]) -> str:
    header, rows = _latency_rows(databricks["clients"])
    ratios = ", ".join(f"sleep({s}): {r:.1f}x" for s, r in databricks["wall_ratio_sdk_over_ours"].items())
    over = ", ".join(f"sleep({s}): {ms:.1f} ms" for s, ms in databricks["ours_over_floor_ms"].items())
    note = (
        f"{databricks['repetitions']} repetitions per statement, clients taking turns, on one stand-in "
        f"cluster. Our median added latency over the floor: {over}. The SDK's median wall time over "
        f"ours: {ratios}."
    )
    return _table(header, rows) + "\n\n" + note


def git_table(git: dict[str, Any]) -> str:
    cache, clone = git["open_from_cache_s"], git["fresh_clone_s"]
    rows = [
        ["open from the encrypted cache", f"{cache['median'] * 1000:.1f}", f"{cache['p90'] * 1000:.1f}"],
        ["fresh clone from the Git server", f"{clone['median'] * 1000:.1f}", f"{clone['p90'] * 1000:.1f}"],
    ]
    opening = _table(["opening one pipeline", "ms (median)", "ms (p90)"], rows)
    speed = git["throughput"]
    rows = [
        [name, f"{speed[name]['median']:.0f}", f"{speed[name]['min']:.0f}"]
        for name in ("seal", "open", "put", "get")
    ]
    note = (
        f"{git['repetitions']} repetitions on a repository of {git['pipelines']} pipelines and "
        f"{git['commits']} commits; the clone takes **{git['clone_over_cache']:.0f}x** as long. "
        f"Throughput on a {speed['entry_mb']:.0f} MB entry: seal/open in memory, put/get through "
        "the cache (disk included)."
    )
    return opening + "\n\n" + _table(["cache", "MB/s (median)", "MB/s (min)"], rows) + "\n\n" + note


def transfer_table(transfer: dict[str, Any]) -> str:
    def first(r: dict[str, Any], key: str) -> str:
        if key not in r:
            return "-"
        cold = f" (first {r[f'first_{key}']:.2f})" if f"first_{key}" in r else ""
        return f"{r[key]['median']:.2f}{cold}"

    clients = [c for c in TRANSFER_CLIENTS if c in transfer]
    rows = []
    for client in clients:
        r = transfer[client]
        exact = sum(r["follows_schema"].values())
        rows.append(
            [
                TRANSFER_CLIENTS[client][1],
                f"{r['rows']:,}",
                f"{r['seconds']['median']:.2f} (first {r['first_seconds']:.2f})",
                f"{r['rows_per_s']:,.0f}",
                first(r, "server_s"),
                first(r, "client_s"),
                f"{r['peak_increase_mb']:.0f}",
                f"{r['frame_mb']:.0f}",
                f"{r['peak_over_frame']:.2f}x",
                f"{exact}/{len(r['follows_schema'])}",
            ]
        )
    header = [
        "client",
        "rows",
        "seconds (median)",
        "rows/s",
        "server s",
        "client s",
        "peak RSS increase MB",
        "DataFrame MB",
        "peak / DataFrame",
        "columns typed as Spark's",
    ]
    schema = transfer["ours"]["spark_schema"]
    types = [
        [f"`{column}`", schema[column]]
        + [
            transfer[client]["columns"][column]["dtype"]
            + ("" if transfer[client]["follows_schema"][column] else " (wrong)")
            for client in clients
        ]
        for column in schema
    ]
    runs = transfer["ours"]["seconds"]["n"]
    notes = [
        f"Median of {runs} warm transfer(s) per client after one cold transfer (the 'first' time), "
        "each client in a fresh process (each Spark Connect client on a fresh server); memory counts "
        "the cold transfer too. server s: the statements' time on our gateway."
    ]
    ratios = [f"over sparkmagic: **{transfer['rows_per_s_ratio']:.1f}x**"]
    for client in ("connect_topandas", "connect_toarrow"):
        if (key := f"rows_per_s_ours_over_{client}") in transfer:
            ratios.append(f"over {TRANSFER_CLIENTS[client][0]}: **{transfer[key]:.2f}x**")
    notes.append("Rows/s of ours " + "; ".join(ratios) + ".")
    if "cold_over_warm" in transfer["ours"]:
        notes.append(f"Ours, cold over warm: **{transfer['ours']['cold_over_warm']:.2f}x**.")
    if transfer["ours"]["rows"] != transfer["sparkmagic"]["rows"]:
        notes.append("sparkmagic was measured on fewer rows (rows/s is the comparable number).")
    if "connect_toarrow" in transfer:
        notes.append(
            "`toArrow()` hands over a pyarrow Table: its size is the Table's buffers, and its columns are "
            "judged by their Arrow types against pyspark's mapping of the Spark types."
        )
    for client, error in transfer.get("errors", {}).items():
        notes.append(f"{TRANSFER_CLIENTS[client][0]} could not be measured: {error.rstrip('.')}.")
    names = [TRANSFER_CLIENTS[c][0] for c in clients]
    return "\n\n".join(
        [_table(header, rows), " ".join(notes), _table(["column", "Spark type", *names], types)]
    )


SNOWFLAKE_CLIENTS = {
    "ours": "ours, `%%sql -o df -n -1`",
    "connector": "bare connector, `fetch_pandas_all()`",
    "jupysql": "jupysql + snowflake-sqlalchemy, `%sql` (autopandas)",
}


def snowflake_table(snowflake: dict[str, Any]) -> str:
    rows = []
    for name, label in SNOWFLAKE_CLIENTS.items():
        r = snowflake[name]
        rows.append(
            [
                label,
                f"{r['rows']:,}",
                f"{r['seconds']['median']:.2f} (first {r['first_seconds']:.2f})",
                f"{r['rows_per_s']:,.0f}",
                f"{r['peak_increase_mb']:.0f}",
                f"{r['frame_mb']:.0f}",
                f"{sum(r['follows_type'].values())}/{len(r['follows_type'])}",
            ]
        )
    header = [
        "client",
        "rows",
        "seconds (median)",
        "rows/s",
        "peak RSS increase MB",
        "DataFrame MB",
        "typed right",
    ]
    types = []
    for column, snowflake_type in snowflake["types"].items():
        row = [f"`{column}`", snowflake_type]
        for name in SNOWFLAKE_CLIENTS:
            typed = {k.upper(): v for k, v in snowflake[name]["follows_type"].items()}
            dtype = {k.upper(): v["dtype"] for k, v in snowflake[name]["columns"].items()}[column]
            row.append(dtype + ("" if typed[column] else " (wrong)"))
        types.append(row)
    runs = snowflake["ours"]["seconds"]["n"]
    execute = snowflake["connector"]["execute_s"]["median"]
    note = (
        f"Median of {runs} warm transfer(s) per client after one cold one, each client in a fresh "
        "process, all reading one table from one fakesnow server. Rows/s of ours over the bare "
        f"connector: **{snowflake['rows_per_s_ours_over_connector']:.2f}x**; over jupysql: "
        f"**{snowflake['rows_per_s_ours_over_jupysql']:.1f}x**. The stand-in's own answer (the "
        f"connector's `execute`, rows fetched and parsed) takes {execute:.2f} s of every client's time. "
        "Ours fetches in the session's interpreter: its memory is not the notebook's."
    )
    header_types = ["column", "Snowflake type", *SNOWFLAKE_CLIENTS]
    return "\n\n".join([_table(header, rows), note, _table(header_types, types)])


def send_table(send: dict[str, Any]) -> str:
    def right(result: dict[str, Any], key: str) -> str:
        return f"{sum(result[key].values())}/{len(result[key])}"

    rows = []
    for client, (_, label) in SEND_CLIENTS.items():
        if client not in send:
            continue
        r = send[client]
        if client == "sparkmagic":
            step = next(s for s in r["steps"] if s["rows"] == r["rows"])
            first = r["first"]
            seconds = f"{r['seconds']:.2f} (one send; first, {first['rows']} rows: {first['seconds']:.2f})"
            parts = [f"{step['send_s']:.2f}", f"{step['count_s']:.2f}", f"{step['server_s']:.2f}"]
        else:
            seconds = f"{r['seconds']['median']:.2f} (first {r['first_seconds']:.2f})"
            server = f"{r['server_s']['median']:.2f}" if "server_s" in r else "-"
            parts = [f"{r['send_s']['median']:.2f}", f"{r['count_s']['median']:.2f}", server]
        rows.append(
            [
                label,
                f"{r['rows']:,}",
                seconds,
                f"{r['rows_per_s']:,.0f}",
                *parts,
                f"{r['peak_increase_mb']:.0f}",
                right(r, "types_right"),
                right(r, "values_right"),
            ]
        )
    header = [
        "client",
        "rows",
        "seconds (median)",
        "rows/s",
        "send s",
        "count() s",
        "server s",
        "peak RSS increase MB",
        "Spark types right",
        "values right",
    ]
    warm = send["repetitions"] - 1
    notes = [
        f"A {send['rows']:,}-row frame ({send['frame_mb']:.0f} MB in pandas) sent, then `count()` on the "
        f"fabric; ours and Spark Connect: median of {warm} warm send(s) after one cold one (the 'first' "
        "time), each client in a fresh process, each send a frame with other values in `d`. "
        "server s: the statements' time on our gateway."
    ]
    ratios = []
    for client in ("sparkmagic", "connect"):
        key = f"rows_per_s_ours_over_{client}"
        if key in send:
            ratios.append(f"over {SEND_CLIENTS[client][0]}: **{send[key]:.1f}x**")
    if ratios:
        notes.append("Rows/s of ours " + "; ".join(ratios) + ".")
    if (connect := send.get("connect")) and "plan" in connect:
        where = (
            "inside the plan, which `count()` sends"
            if connect["plan"] == "LocalRelation"
            else "by `createDataFrame`, as Arrow chunks named by their hash"
        )
        notes.append(
            f"Spark Connect sent the rows {where} (`{connect['plan']}`; the cutoff, "
            f"`spark.sql.session.localRelationCacheThreshold`, is {connect['cache_threshold']} bytes)."
        )
    for client, error in send.get("errors", {}).items():
        notes.append(f"{SEND_CLIENTS[client][0]} could not be measured: {error}")
    parts = [_table(header, rows), " ".join(notes)]
    if sm := send.get("sparkmagic"):
        first = sm["first"]
        cold = [f"{first['seconds']:.2f}", f"{first['rows_per_s']:,.0f}", f"{first['server_s']:.2f}"]
        steps = [[f"{first['rows']:,} (first send)", *cold]]
        steps += [
            [f"{s['rows']:,}", f"{s['seconds']:.2f}", f"{s['rows_per_s']:,.0f}", f"{s['server_s']:.2f}"]
            if "error" not in s
            else [
                f"{s['rows']:,}",
                f"{s['seconds']:.2f}",
                f"failed ({s['json_mb']:.0f} MB of JSON in the code)",
                s["error"][-200:].replace("\n", " ").replace("|", "/"),
            ]
            for s in sm["steps"]
        ]
        parts.append(_table(["sparkmagic: rows sent", "seconds", "rows/s", "server s"], steps))
        parts.append(
            f"sparkmagic sends {first['rows']} rows first (its session's first Spark job), then growing row "
            "counts of the same frame, one send each, while the next is expected to fit in "
            f"{sm['budget_s']:.0f} s of sending in all ({sm['spent_s']:.0f} s spent; stopped: "
            f"{sm['stopped']}); its rows/s above is the best step's."
        )
    clients = [c for c in SEND_CLIENTS if c in send]
    types = []
    for column, kinds in send["columns"].items():
        row = [f"`{column}`", kinds["pandas"], kinds["spark"]]
        for client in clients:
            r = send[client]
            if column not in r["spark_types"]:
                row.append("missing")
                continue
            cell = r["spark_types"][column] + ("" if r["types_right"][column] else " (wrong)")
            row.append(cell + ("" if r["values_right"][column] else " (values wrong)"))
        types.append(row)
    names = [SEND_CLIENTS[c][0] for c in clients]
    parts.append(_table(["column", "pandas dtype sent", "Spark type wanted", *names], types))
    for client in clients:
        extra = {k: v for k, v in send[client]["spark_types"].items() if k not in send["columns"]}
        if extra:
            listed = ", ".join(f"`{k}` {v}" for k, v in extra.items())
            parts.append(f"{SEND_CLIENTS[client][0]}'s `sent` also has: {listed}.")
    return "\n\n".join(parts)


def startup_table(startup: dict[str, Any]) -> str:
    def times(row: dict[str, Any]) -> list[str]:
        return [f"{row[k]['median']:.2f}" for k in ("ready_s", "launch_to_ready_s", "process_wall_s")]

    def further(row: dict[str, Any]) -> str:
        return f"{row['ready_s']['median']:.2f} (max {row['ready_s']['max']:.2f}, n={row['ready_s']['n']})"

    ours, probe = startup["ours_further"], startup["probe_further"]
    rows = [
        ["bare `SparkSession.builder.master('local[*]').getOrCreate()`", *times(startup["bare"]), "-"],
        [
            "ours: first session on `local` (gateway + JVM + interpreter), first start",
            *times(startup["ours_first"]),
            f"{startup['ours_first']['tree_rss_mb']['median']:.0f} (whole gateway tree)",
        ],
        *(
            [
                [
                    "ours: the same, later starts (class archive made)",
                    *times(startup["ours-archived_first"]),
                    f"{startup['ours-archived_first']['tree_rss_mb']['median']:.0f} (whole gateway tree)",
                ]
            ]
            if "ours-archived_first" in startup
            else []
        ),
        [
            "ours: each further session",
            further(ours),
            "-",
            "-",
            f"+{ours['added_rss_mb']['median']:.0f} (max {ours['added_rss_mb']['max']:.0f});"
            f" PSS +{ours['added_pss_mb']['median']:.0f}",
        ],
        ["reference: first session, raw HTTP polling every 50 ms", *times(startup["probe_first"]), "-"],
        ["reference: each further session, raw HTTP polling every 50 ms", further(probe), "-", "-", "-"],
    ]
    header = ["what", "ready s (in process)", "launch to ready s", "process wall s", "RSS MB"]
    note = (
        f"Medians of {startup['repetitions']} fresh process(es) each, taking turns. The reference rows "
        "use the same local gateway without the session service: the gap to ours is time the session "
        "was ready before the service noticed."
    )
    if "class_archive_made_s" in startup:
        note += (
            " A first start has an empty data dir; a later start finds the local JVM's class archive "
            f"a first one made ({startup['class_archive_mb']:.0f} MB, made in "
            f"{startup['class_archive_made_s']:.1f} s on the idle machine before these runs)."
        )
    parts = [_table(header, rows), note]
    if quickstart := startup.get("quickstart"):
        error = quickstart.get("error")
        parts.append(f"Quickstart: failed: {error}" if error else quickstart_table(quickstart))
    return "\n\n".join(parts)


def quickstart_table(quickstart: dict[str, Any]) -> str:
    def median(row: dict[str, Any], key: str) -> str:
        return f"{row[key]['median']:.2f}" if key in row else "-"

    names = {
        "auto": "`auto` (default), first start",
        "auto-archived": "`auto` (default), later starts (class archive made)",
        "never": "`never`",
    }
    rows = []
    for variant, name in names.items():
        if variant not in quickstart:
            continue
        row = quickstart[variant]
        spread = row["after_kernel_ready_s"]
        rows.append(
            [
                name,
                f"**{spread['median']:.2f}** ({spread['min']:.2f}-{spread['max']:.2f})",
                median(row, "cell_1_s"),
                median(row, "cell_2_s"),
                median(row, "from_server_start_s"),
                median(row, "kernel_ready_s"),
                f"{median(row, 'jvm_ready')} / {median(row, 'jvm_warmed')}",
            ]
        )
    header = [
        "local_warm_start",
        "first `%%spark` result after kernel ready s",
        "cell 1: `%load_ext`, `%fabric attach` s",
        "cell 2: `%%spark` s",
        "from server start s",
        "kernel start to ready s",
        "JVM ready / warmed up, from server start s",
    ]
    answered = quickstart["auto"]["server_answers_s"]["median"]
    note = (
        f"The quickstart notebook as a newcomer meets it: medians of {quickstart['repetitions']} fresh "
        "Jupyter server(s) each (fresh data dirs, single-user), taking turns. The server answered "
        f"{answered:.2f} s after its launch; {quickstart['user_wait_s']:g} s later (the user opening "
        "the notebook) its kernel was started through `POST /api/sessions`, and the cells up to the "
        "first `%%spark` ran over jupyter_client once the kernel answered. A JVM time of '-' means "
        "its log did not say so before the cell's result in every run."
    )
    return _table(header, rows) + "\n\n" + note


def concurrency_table(concurrency: dict[str, Any]) -> str:
    ours, theirs = concurrency["ours"], concurrency["sparkmagic"]
    rows = []
    for phase in ours["phases"]:
        for name, measured in (("ours", ours["phases"][phase]), ("sparkmagic", theirs["phases"][phase])):
            added = measured["added_ms"]
            server = measured.get("added_by_server_ms")
            lag = measured.get("loop_lag_ms")
            rows.append(
                [
                    phase,
                    name,
                    f"{measured['completed']} / {ours['notebooks'] * ours['statements_each']}",
                    f"{added['median']:.1f} / {added['p99']:.1f} / {added['max']:.1f}",
                    f"{server['median']:.1f} / {server['p99']:.1f} / {server['max']:.1f}" if server else "-",
                    f"{lag['p99']:.1f} / {lag['max']:.1f}" if lag else "-",
                    f"{measured['statements_per_s']:.0f}",
                ]
            )
    header = [
        "phase",
        "client",
        "statements ok",
        "added ms median / p99 / max",
        "added by the server ms",
        "loop lag ms p99 / max",
        "statements/s",
    ]
    note = (
        f"{ours['notebooks']} notebooks at once, {ours['statements_each']} short statements each per phase, "
        "after one warm-up statement per notebook. ours: kernels' REST calls to the Jupyter server, "
        "`local` fabric, long poll; sparkmagic: one Livy client per notebook on a gateway of its own. "
        "back-to-back: each statement as soon as the previous answered (the machine's CPUs are the "
        "limit); paced: 0.5-1.5 s between statements, as a person running cells; paced beside 4 busy: "
        "the same while 4 more notebooks each keep a CPU busy with a Python loop. Added = wall time "
        "seen by the notebook minus the time the gateway says the statement ran; added by the server = "
        "wall time minus the server's own round trip to the gateway. Loop lag: how late the server's "
        f"event loop woke from 5 ms sleeps. Sessions were ready after {ours['sessions_ready_s']:.1f} s "
        f"(ours) and {theirs['sessions_ready_s']:.1f} s (sparkmagic)."
    )
    return _table(header, rows) + "\n\n" + note + _stalls_note(ours["phases"])


def _stalls_note(phases: dict[str, Any]) -> str:
    """Which of the server loop's late wake-ups a plain process beside it had at the same moment."""
    if not all("late_wakeups" in measured for measured in phases.values()):
        return ""
    parts = []
    for phase, measured in phases.items():
        late = measured["late_wakeups"]
        shared = sum(wakeup["probe_too"] for wakeup in late)
        worst = max((wakeup["ms"] for wakeup in late), default=0.0)
        probe = max(measured["probe_stalls_ms"], default=0.0)
        parts.append(
            f"{phase}: {len(late)} (longest {worst:.0f} ms), {shared} of them shared; "
            f"the plain process's own: {len(measured['probe_stalls_ms'])} (longest {probe:.0f} ms)"
        )
    return (
        " Late wake-ups of the server's loop (over 20 ms), and how many of them a plain Python "
        "process sleeping the same way beside it (benchmarks/stall_probe.py) had at the same moment: "
        + "; ".join(parts)
        + "."
    )


def goals_table(goals: list[dict[str, Any]]) -> str:
    rows = [
        [g["benchmark"], g["measure"], f"{g['value']:.3g} {g['unit']}".strip(), g["goal"], _mark(g["met"])]
        for g in goals
    ]
    return _table(["benchmark", "measure", "value", "goal", "met"], rows)


def markdown(results: dict[str, Any]) -> str:
    """Every table of a run, with a heading each."""
    meta = results["meta"]
    parts = [
        f"Run of {meta['started']} at commit {meta['versions']['commit']} "
        f"({meta['mode']}, {meta['duration_s']:.0f} s, {meta['cpus']} CPUs, "
        f"load average {meta['load_before'][0]:.2f} before / {meta['load_after'][0]:.2f} after)."
    ]
    sections = (
        ("latency", "Latency added over the server's execution time", latency_table),
        ("transfer", "`%%sql -o` into pandas, end to end", transfer_table),
        ("startup", "Session start on the local fabric", startup_table),
        ("concurrency", "Many notebooks at once through the server", concurrency_table),
        ("databricks", "Databricks cells: our engine against databricks-sdk's waiter", databricks_table),
        ("git", "Opening a pipeline: the encrypted cache against a fresh clone", git_table),
        ("snowflake", "`%%sql -o` on a Snowflake fabric, end to end", snowflake_table),
        ("send", "Sending a pandas DataFrame to Spark, then `count()`", send_table),
        (
            "control-plane",
            "The control plane at scale: simulated notebooks through the server",
            control_plane_table,
        ),
    )
    for key, title, render in sections:
        if key in results:
            error = results[key].get("error")
            parts.append(f"### {title}\n\n" + (f"Failed: {error}" if error else render(results[key])))
    parts.append(f"### Goals\n\n{goals_table(results['goals'])}")
    return "\n\n".join(parts) + "\n"
