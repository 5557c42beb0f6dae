"""Benchmark 3: starting sessions on the local fabric, against a bare local SparkSession.

Run as ``python -m benchmarks.startup {bare,ours,probe} --out FILE``; :func:`measure_startup`
starts each in a fresh process. Times inside a worker start just before its first import of pyspark
or prophecy_jupyter; ``ready_epoch`` lets the parent count from the process launch.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import run_worker, summary, tree_memory, worker_env, write_result

CLIENTS = ("bare", "ours", "probe")
PROBE_INTERVAL = 0.05


def bare() -> dict[str, Any]:
    """``SparkSession.builder.master('local[*]').getOrCreate()``, timed from the import of pyspark."""
    started = time.perf_counter()
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.master("local[*]").getOrCreate()
    ready = time.perf_counter() - started
    ready_epoch = time.time()
    spark.stop()
    return {"ready_s": ready, "ready_epoch": ready_epoch}


def ours(further: int) -> dict[str, Any]:
    """The first session on ``local`` from an empty data dir (gateway, JVM, interpreter), then more."""
    started = time.perf_counter()
    from prophecy_jupyter.environment import local_username, services_of_this_process

    user = local_username()
    services = services_of_this_process(user)
    service = services.sessions
    try:
        service.session(user, "bench-0", "local")
        result: dict[str, Any] = {"ready_s": time.perf_counter() - started, "ready_epoch": time.time()}
        result["tree_after_first"] = tree_memory(os.getpid())
        sessions = []
        for index in range(1, further + 1):
            before = tree_memory(os.getpid())
            begun = time.perf_counter()
            service.session(user, f"bench-{index}", "local")
            ready = time.perf_counter() - begun
            after = tree_memory(os.getpid())
            sessions.append(
                {
                    "ready_s": ready,
                    "added_rss_mb": after["rss_mb"] - before["rss_mb"],
                    "added_pss_mb": after["pss_mb"] - before["pss_mb"],
                    "tree_after": after,
                }
            )
        result["further"] = sessions
        return result
    finally:
        services.close()


def probe(further: int) -> dict[str, Any]:
    """Reference for ``ours``: the same local gateway, its sessions created and polled every 50 ms
    over raw HTTP (no session service), so their ready times carry at most 50 ms of waiting."""
    started = time.perf_counter()
    import requests

    from prophecy_jupyter.environment import local_username, services_of_this_process

    services = services_of_this_process(local_username())
    try:
        url, token = services.local_gateway.endpoint()
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {token}"

        def state(session_id: int) -> str:
            return http.get(f"{url}/sessions/{session_id}/state", timeout=30).json()["state"]

        def open_and_wait() -> None:
            session_id = http.post(f"{url}/sessions", json={"kind": "pyspark"}, timeout=30).json()["id"]
            while (current := state(session_id)) != "idle":
                if current not in ("not_started", "starting"):
                    raise RuntimeError(f"session {session_id} is {current}")
                time.sleep(PROBE_INTERVAL)

        open_and_wait()
        result: dict[str, Any] = {"ready_s": time.perf_counter() - started, "ready_epoch": time.time()}
        sessions = []
        for _ in range(further):
            begun = time.perf_counter()
            open_and_wait()
            sessions.append({"ready_s": time.perf_counter() - begun})
        result["further"] = sessions
        return result
    finally:
        services.close()


def measure_startup(repetitions: int, further: int, timeout: float) -> dict[str, Any]:
    """Bare Spark, our local fabric and the raw-HTTP reference, taking turns, each in a fresh process."""
    runs: dict[str, list[dict[str, Any]]] = {client: [] for client in CLIENTS}
    for repetition in range(repetitions):
        for client in CLIENTS:
            with tempfile.TemporaryDirectory(prefix="prophecy-bench-data-") as data_dir:
                args = [client, "--further", str(further)]
                env = worker_env(Path(data_dir))
                log_name = f"startup-{client}-{repetition}"
                result, launched, wall = run_worker("benchmarks.startup", args, env, timeout, log_name)
            result["launch_to_ready_s"] = result.pop("ready_epoch") - launched
            result["process_wall_s"] = wall
            runs[client].append(result)
    keys = ("ready_s", "launch_to_ready_s", "process_wall_s")
    results: dict[str, Any] = {"repetitions": repetitions, "runs": runs}
    results["bare"] = {k: summary([r[k] for r in runs["bare"]]) for k in keys}
    for client in ("ours", "probe"):
        results[f"{client}_first"] = {k: summary([r[k] for r in runs[client]]) for k in keys}
        further_runs = [s for r in runs[client] for s in r["further"]]
        results[f"{client}_further"] = {
            k: summary([s[k] for s in further_runs]) for k in further_runs[0] if k != "tree_after"
        }
    results["ours_first"]["tree_rss_mb"] = summary([r["tree_after_first"]["rss_mb"] for r in runs["ours"]])
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("client", choices=CLIENTS)
    parser.add_argument("--further", type=int, default=3, help="sessions to open after the first")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    measure = {"bare": lambda _: bare(), "ours": ours, "probe": probe}[args.client]
    write_result(args.out, measure(args.further))


if __name__ == "__main__":
    main()
