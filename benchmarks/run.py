"""``make bench``: our client side by side with sparkmagic's Livy client, on the same gateway.

    .venv/bin/python benchmarks/run.py [--quick] [--only latency,transfer,startup,databricks,git,send]

Measures (1) the latency each client adds over a statement's server time, (2) ``%%sql -o`` of a
cached table into pandas, (3) session start on the local fabric, and (4) many notebooks at once
through the Jupyter server extension against as many sparkmagic clients, and (5) the latency our
Databricks engine adds against databricks-sdk's own waiter on a stand-in workspace, and (6) opening
a pipeline from the encrypted cache against a fresh clone, with the cache's throughput, and (7)
``%%sql -o`` on a Snowflake fabric against jupysql and the bare connector on one fakesnow server, and (8)
sending a local pandas DataFrame to Spark (``%%send``) against sparkmagic's ``%%send_to_spark`` and
Spark Connect's ``createDataFrame``, and (9) the control plane at scale: 50 to 500 simulated
notebooks through a Jupyter server against an engine that answers at once. Writes
``benchmarks/results/latest.json`` and ``latest.md`` and prints the Markdown tables. These are
measurements, not tests: missed goals are reported, never raised.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo, for `benchmarks` and `tests`

from benchmarks.common import (
    LOGS,
    RESULTS,
    ProcessTracker,
    register_gateway,
    running_gateway,
    sparkmagic,
    versions,
)
from benchmarks.concurrency import BUSY_NOTEBOOKS, measure_ours, measure_sparkmagic
from benchmarks.control_plane import measure_control_plane
from benchmarks.databricks_cells import measure_databricks
from benchmarks.git_cache import measure_git_cache
from benchmarks.latency import OurClient, SparkmagicClient, measure_latency
from benchmarks.report import assess, failed, markdown
from benchmarks.send import measure_send
from benchmarks.snowflake_sql import measure_snowflake
from benchmarks.startup import measure_startup
from benchmarks.transfer import measure_transfer

BENCHMARKS = (
    "latency",
    "transfer",
    "startup",
    "concurrency",
    "databricks",
    "git",
    "snowflake",
    "send",
    "control-plane",
)


@dataclass(frozen=True)
class Settings:
    """How much each benchmark measures."""

    latency_repetitions: int = 11
    rows: int = 1_000_000
    sparkmagic_rows: int | None = None
    transfer_repetitions: int = 4
    startup_repetitions: int = 5
    further_sessions: int = 3
    gateway_driver_memory: str = "4g"
    """Heap of the benchmark gateway's JVM: at its default (1g) sparkmagic's 1M-row collect can OOM."""
    transfer_timeout: float = 1800.0
    startup_timeout: float = 300.0
    quickstart_user_wait: float = 5.0
    """Seconds between the quickstart's server answering and its notebook being opened (benchmark 3)."""
    notebooks: int = 50
    statements_per_notebook: int = 20
    concurrency_timeout: float = 1200.0
    send_repetitions: int = 4
    """Sends of the frame per client for ours and Spark Connect: one cold, then the median of the rest."""
    sparkmagic_send_budget: float = 60.0
    """Seconds sparkmagic may spend sending growing row counts (it embeds the rows in its code)."""
    control_plane_levels: tuple[int, ...] = (50, 100, 250, 500)
    """Simulated notebooks at once in the control-plane benchmark, one load level each."""
    control_plane_seconds: float = 25.0
    """Seconds measured per phase (back to back, paced) of each load level."""
    control_plane_profile_seconds: float = 12.0
    """Seconds of the profile window (back to back, at the largest level)."""


QUICK = Settings(
    latency_repetitions=3,
    rows=100_000,
    transfer_repetitions=1,
    send_repetitions=2,
    sparkmagic_send_budget=20.0,
    control_plane_levels=(10, 25),
    control_plane_seconds=4.0,
    control_plane_profile_seconds=4.0,
    startup_repetitions=1,
    notebooks=8,
    statements_per_notebook=5,
)


def latency_on(gateway: Any, token: str, scratch: Path, settings: Settings) -> dict[str, Any]:
    """Ours and sparkmagic on ``gateway`` (which long-polls), and ours on a second one that only polls."""
    with running_gateway("gateway-no-long-poll", "--no-long-poll", token=token) as polling:
        clients: dict[str, Any] = {}
        try:
            clients["ours-long-poll"] = OurClient(
                "SessionService.run, long poll", scratch / "data-long-poll", gateway.url, token
            )
            clients["ours-polling"] = OurClient(
                "SessionService.run, gateway --no-long-poll (polls only)",
                scratch / "data-polling",
                polling.url,
                token,
            )
            clients["sparkmagic"] = SparkmagicClient(
                "sparkmagic Command(code).execute(session), long-poll gateway",
                sparkmagic(scratch / "sparkmagic-conf"),
                gateway.url,
                token,
            )
            return measure_latency(clients, settings.latency_repetitions)
        finally:
            for client in clients.values():
                client.close()


def transfer_on(gateway: Any, token: str, scratch: Path, settings: Settings) -> dict[str, Any]:
    """Ours and sparkmagic, each in a fresh process, on ``gateway``; Spark Connect on servers of its own."""
    data_dir = scratch / "data-transfer"
    register_gateway(data_dir, gateway.url, token)
    return measure_transfer(
        data_dir,
        gateway.url,
        token,
        settings.rows,
        settings.sparkmagic_rows or settings.rows,
        settings.transfer_repetitions,
        settings.transfer_timeout,
        settings.gateway_driver_memory,
    )


def databricks_on(gateway: Any, token: str, scratch: Path, settings: Settings) -> dict[str, Any]:
    """Our Databricks engine and databricks-sdk's waiter on a stand-in workspace over ``gateway``."""
    return measure_databricks(gateway.url, token, scratch, settings.latency_repetitions)


def send_on(gateway: Any, token: str, scratch: Path, settings: Settings) -> dict[str, Any]:
    """Ours and sparkmagic, each in a fresh process, on ``gateway``; Spark Connect on a server of its own."""
    data_dir = scratch / "data-send"
    register_gateway(data_dir, gateway.url, token)
    return measure_send(
        data_dir,
        gateway.url,
        token,
        settings.rows,
        settings.send_repetitions,
        settings.sparkmagic_send_budget,
        settings.gateway_driver_memory,
        settings.transfer_timeout,
    )


def concurrency(scratch: Path, settings: Settings) -> dict[str, Any]:
    """Ours through a Jupyter server on the local fabric, then sparkmagic on a gateway of its own."""
    notebooks, statements = settings.notebooks, settings.statements_per_notebook
    timeout = settings.concurrency_timeout
    ours = measure_ours(scratch, notebooks, statements, timeout)
    token = secrets.token_urlsafe(24)
    options = ("--driver-memory", "4g", "--max-sessions", str(notebooks + BUSY_NOTEBOOKS + 2))
    with running_gateway("gateway-concurrency", *options, token=token) as gateway:
        sm = sparkmagic(scratch / "sparkmagic-conf")
        theirs = measure_sparkmagic(sm, scratch, gateway.url, token, notebooks, statements, timeout)
    ratios = {
        phase: theirs["phases"][phase]["added_ms"]["median"] / row["added_ms"]["median"]
        for phase, row in ours["phases"].items()
        if row["added_ms"].get("median")
    }
    return {"ours": ours, "sparkmagic": theirs, "median_added_ratio_sparkmagic_over_ours": ratios}


def attempt(results: dict[str, Any], name: str, measure: Callable[..., dict[str, Any]], *args: Any) -> None:
    """Run one benchmark; a failure is recorded under its name and the others still run."""
    try:
        results[name] = measure(*args)
    except Exception as exc:
        traceback.print_exc()
        results[name] = {"error": f"{type(exc).__name__}: {exc}"}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and 100k rows: a smoke run")
    parser.add_argument(
        "--only", default=",".join(BENCHMARKS), help="comma-separated subset of: " + ", ".join(BENCHMARKS)
    )
    parser.add_argument("--rows", type=int, help="rows of the transfer table and of the frame sent")
    parser.add_argument(
        "--sparkmagic-rows", type=int, help="rows for sparkmagic's transfer (default: --rows)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "latest.json")
    args = parser.parse_args()
    unknown = set(args.only.split(",")) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s) {sorted(unknown)}")
    return args


def main() -> int:
    args = parse_args()
    settings = QUICK if args.quick else Settings()
    settings = replace(
        settings,
        rows=args.rows or settings.rows,
        sparkmagic_rows=args.sparkmagic_rows or settings.sparkmagic_rows,
    )
    only = set(args.only.split(","))
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from prophecy_jupyter.vault.keys import new_key

    os.environ["PROPHECY_JUPYTER_KEY"] = new_key()  # a throwaway vault for the scratch data dirs
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that everything started is stopped
    shutil.rmtree(LOGS, ignore_errors=True)

    meta: dict[str, Any] = {
        "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "mode": "quick" if args.quick else "full",
        "settings": asdict(settings),
        "versions": versions(),
        "cpus": os.cpu_count(),
        "load_before": os.getloadavg(),
    }
    results: dict[str, Any] = {"meta": meta}
    began = time.perf_counter()
    with ProcessTracker() as tracker, tempfile.TemporaryDirectory(prefix="prophecy-bench-") as scratch:
        try:
            if only & {"latency", "transfer", "databricks", "send"}:
                token = secrets.token_urlsafe(24)
                memory = ("--driver-memory", settings.gateway_driver_memory)
                on_gateway = (
                    ("latency", latency_on),
                    ("transfer", transfer_on),
                    ("databricks", databricks_on),
                    ("send", send_on),
                )
                with running_gateway("gateway-long-poll", *memory, token=token) as gateway:
                    for name, measure in on_gateway:
                        if name in only:
                            attempt(results, name, measure, gateway, token, Path(scratch), settings)
            if "startup" in only:
                further = settings.further_sessions
                repetitions, timeout = settings.startup_repetitions, settings.startup_timeout
                wait = settings.quickstart_user_wait
                attempt(results, "startup", measure_startup, repetitions, further, timeout, wait)
            if "concurrency" in only:
                attempt(results, "concurrency", concurrency, Path(scratch), settings)
            if "git" in only:
                attempt(results, "git", measure_git_cache, Path(scratch), settings.latency_repetitions)
            if "control-plane" in only:
                levels, seconds = settings.control_plane_levels, settings.control_plane_seconds
                profile = settings.control_plane_profile_seconds
                attempt(
                    results, "control-plane", measure_control_plane, Path(scratch), levels, seconds, profile
                )
            if "snowflake" in only:
                rows, repetitions = settings.rows, settings.transfer_repetitions + 1
                timeout = settings.transfer_timeout
                attempt(results, "snowflake", measure_snowflake, Path(scratch), rows, repetitions, timeout)
        finally:
            meta["stopped_at_end"] = tracker.finish()
    meta["duration_s"] = time.perf_counter() - began
    meta["load_after"] = os.getloadavg()
    results["goals"] = assess(results)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str))
    report = markdown(results)
    args.out.with_suffix(".md").write_text(report)
    print(report)
    print(f"Results: {args.out}")
    return 1 if any(failed(results.get(name, {})) for name in BENCHMARKS) else 0


if __name__ == "__main__":
    sys.exit(main())
