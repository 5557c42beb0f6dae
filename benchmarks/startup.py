"""Benchmark 3: starting sessions on the local fabric, against a bare local SparkSession, and the
quickstart notebook's first ``%%spark`` cell as a newcomer meets it.

Run as ``python -m benchmarks.startup {bare,ours,probe} --out FILE``; :func:`measure_startup`
starts each in a fresh process. Times inside a worker start just before its first import of pyspark
or prophecy_jupyter; ``ready_epoch`` lets the parent count from the process launch.
:func:`measure_quickstart` starts a real Jupyter server per run (see its docstring).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

from benchmarks.common import LOGS, REPO, end, run_worker, summary, tree_memory, worker_env, write_result

CLIENTS = ("bare", "ours", "probe")
ARCHIVED = "-archived"
"""A variant's suffix: its data dir holds the local JVM's class archive, as after a first start."""
STARTS = ("bare", "ours", "ours" + ARCHIVED, "probe")
PROBE_INTERVAL = 0.05
QUICKSTART = REPO / "notebooks" / "quickstart.ipynb"
WARM_STARTS = ("auto", "auto" + ARCHIVED, "never")
"""``c.ProphecyJupyter.local_warm_start`` of the quickstart's servers: the default (a first start,
and a later one, with the class archive), and off."""
WARM_START_ENV = "PROPHECY_JUPYTER_LOCAL_WARM_START"
CLASS_ARCHIVE_ENV = "PROPHECY_JUPYTER_LOCAL_CLASS_ARCHIVE"
ARCHIVE_FOLDER = "class-archives"
"""Where the local gateway keeps its class archive, in the data dir."""
QUICKSTART_OUTPUT = "20,000 orders"


QUICKSTART_RUNS = 3
"""Fresh servers per warm-start mode for the quickstart (each takes half a minute or more)."""


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


def make_class_archive(folder: Path) -> tuple[Path, float]:
    """This install's class archive for the local JVM, made as a gateway makes it (without the
    gateway's lowest priority: the machine is otherwise idle); its path and the seconds it took."""
    from prophecy_jupyter.gateway.class_archive import ClassArchive
    from prophecy_jupyter.gateway.config import GatewayConfig
    from prophecy_jupyter.gateway.spark_host import base_spark_conf, temporary_folder
    from prophecy_jupyter.services.settings import ServiceSettings

    archive = ClassArchive(folder)
    config = GatewayConfig(driver_memory=ServiceSettings().local_driver_memory)
    conf = base_spark_conf(config, str(folder))
    os.makedirs(temporary_folder(str(folder)), exist_ok=True)
    started = time.monotonic()
    command = [sys.executable, "-m", "prophecy_jupyter.gateway.class_archive", str(archive.path)]
    with open(LOGS / "class-archive.log", "w") as log:
        subprocess.run(
            [*command, str(folder / ".partial.tmp")],
            input=json.dumps(conf),
            text=True,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=True,
        )
    return archive.path, time.monotonic() - started


def place_archive(archive: Path, data_dir: Path) -> None:
    """Put the class archive where the local gateway of ``data_dir`` finds it (as after its first
    start)."""
    folder = data_dir / ARCHIVE_FOLDER
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.link(archive, folder / archive.name)


def measure_startup(repetitions: int, further: int, timeout: float, user_wait: float) -> dict[str, Any]:
    """Bare Spark, our local fabric (without and with its class archive) and the raw-HTTP reference,
    taking turns, each in a fresh process; then the quickstart (:func:`measure_quickstart`,
    ``user_wait`` s before the notebook is opened)."""
    LOGS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="prophecy-bench-archive-") as archives:
        archive, archive_s = make_class_archive(Path(archives))
        results = measure_sessions(repetitions, further, timeout, archive)
        results["class_archive_made_s"] = archive_s
        results["class_archive_mb"] = archive.stat().st_size / 2**20
        try:
            quickstart_runs = min(repetitions, QUICKSTART_RUNS)
            results["quickstart"] = measure_quickstart(quickstart_runs, user_wait, timeout, archive)
        except Exception as exc:  # the session measurements above still count
            traceback.print_exc()
            results["quickstart"] = {"error": f"{type(exc).__name__}: {exc}"}
    return results


def measure_sessions(repetitions: int, further: int, timeout: float, archive: Path) -> dict[str, Any]:
    """The first and further sessions of each of :data:`STARTS`, taking turns, each in a fresh
    process (``archive`` placed in the data dir of the ``-archived`` ones)."""
    runs: dict[str, list[dict[str, Any]]] = {start: [] for start in STARTS}
    for repetition in range(repetitions):
        for start in STARTS:
            with tempfile.TemporaryDirectory(prefix="prophecy-bench-data-") as data_dir:
                if start.endswith(ARCHIVED):
                    place_archive(archive, Path(data_dir))
                args = [start.removesuffix(ARCHIVED), "--further", str(further)]
                env = worker_env(Path(data_dir), **{CLASS_ARCHIVE_ENV: "auto"})
                log_name = f"startup-{start}-{repetition}"
                result, launched, wall = run_worker("benchmarks.startup", args, env, timeout, log_name)
            result["launch_to_ready_s"] = result.pop("ready_epoch") - launched
            result["process_wall_s"] = wall
            runs[start].append(result)
    keys = ("ready_s", "launch_to_ready_s", "process_wall_s")
    results: dict[str, Any] = {"repetitions": repetitions, "runs": runs}
    results["bare"] = {k: summary([r[k] for r in runs["bare"]]) for k in keys}
    for client in ("ours", "ours" + ARCHIVED, "probe"):
        results[f"{client}_first"] = {k: summary([r[k] for r in runs[client]]) for k in keys}
        further_runs = [s for r in runs[client] for s in r["further"]]
        results[f"{client}_further"] = {
            k: summary([s[k] for s in further_runs]) for k in further_runs[0] if k != "tree_after"
        }
    for client in ("ours", "ours" + ARCHIVED):
        rss = [r["tree_after_first"]["rss_mb"] for r in runs[client]]
        results[f"{client}_first"]["tree_rss_mb"] = summary(rss)
    return results


def quickstart_cells() -> tuple[str, list[str]]:
    """The quickstart's kernel (from its metadata) and its code cells up to its first ``%%spark``."""
    notebook = json.loads(QUICKSTART.read_text())
    code = ["".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code"]
    first_spark = next(i for i, c in enumerate(code) if c.lstrip().startswith("%%spark"))
    return notebook["metadata"]["kernelspec"]["name"], code[: first_spark + 1]


@contextlib.contextmanager
def without_env(name: str) -> Iterator[None]:
    """``name`` unset in this process (so in what it starts) meanwhile: the tests set it."""
    saved = os.environ.pop(name, None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ[name] = saved


GATEWAY_EVENTS = {
    "jvm_ready": re.compile(r"shared Spark \S+ ready in"),
    "jvm_warmed": re.compile(r"shared Spark JVM warmed up in"),
}


def gateway_events(data_dir: Path) -> dict[str, float]:
    """When the local gateway's JVM was ready and warmed up (epoch seconds), from its log."""
    found: dict[str, float] = {}
    for log in sorted((data_dir / "logs").glob("local-gateway-*.log")):
        for line in log.read_text(errors="replace").splitlines():
            for event, pattern in GATEWAY_EVENTS.items():
                if event not in found and pattern.search(line):
                    with contextlib.suppress(ValueError):
                        stamp = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
                        found[event] = stamp.timestamp()
    return found


def quickstart_once(
    variant: str, user_wait: float, timeout: float, base: Path, archive: Path | None
) -> dict[str, Any]:
    """One newcomer: a fresh Jupyter server (fresh data dirs, ``local_warm_start`` as ``variant``
    says, and ``archive`` in the data dir if its name ends in ``-archived``), ``user_wait`` s of
    opening the notebook once it answers, then its kernel started through the REST API and its cells
    run up to the first ``%%spark`` over jupyter_client."""
    from prophecy_jupyter.vault.keys import new_key
    from tests.servers.jupyter import start_jupyter
    from tests.servers.kernels import execute

    kernel_name, cells = quickstart_cells()
    warm_start = variant.removesuffix(ARCHIVED)
    options = () if warm_start == "auto" else (f"--ProphecyJupyter.local_warm_start={warm_start}",)
    data_dir = base / "prophecy-data"
    if variant.endswith(ARCHIVED) and archive is not None:
        place_archive(archive, data_dir)
    with without_env(WARM_START_ENV), without_env(CLASS_ARCHIVE_ENV):
        launched_epoch, launched = time.time(), time.monotonic()
        server = start_jupyter(base, data_dir, new_key(), *options)
    answered = time.monotonic()
    client = None
    try:
        shutil.copy(QUICKSTART, server.root / QUICKSTART.name)
        time.sleep(user_wait)
        opened = time.monotonic()
        kernel_id = server.start_kernel(QUICKSTART.name, kernel_name)
        started = time.monotonic()
        client = server.client(kernel_id)
        ready = time.monotonic()
        cell_s = []
        for code in cells:
            begun = time.monotonic()
            cell = execute(client, code, timeout=timeout)
            cell_s.append(time.monotonic() - begun)
            if not cell.ok:
                raise RuntimeError(f"quickstart cell {len(cell_s)} failed: {cell.failure}")
        done = time.monotonic()
        if QUICKSTART_OUTPUT not in cell.stdout:
            raise RuntimeError(f"the first %%spark cell printed {cell.stdout!r}")
        events = {k: v - launched_epoch for k, v in gateway_events(data_dir).items()}
        return {
            "variant": variant,
            "after_kernel_ready_s": done - ready,
            "from_server_start_s": done - launched,
            "server_answers_s": answered - launched,
            "kernel_start_call_s": started - opened,
            "kernel_ready_s": ready - opened,
            "cells_s": cell_s,
            "gateway_after_server_start_s": events,
            "kernel_ready_after_server_start_s": ready - launched,
        }
    finally:
        if client is not None:
            client.stop_channels()
        tree = [psutil.Process(server.process.pid)]
        with contextlib.suppress(psutil.Error):
            tree += tree[0].children(recursive=True)
        server.stop()
        end(tree)
        with contextlib.suppress(OSError):
            LOGS.mkdir(parents=True, exist_ok=True)
            shutil.copy(server.log, LOGS / f"quickstart-{variant}-{server.log.name}")


def measure_quickstart(
    repetitions: int, user_wait: float, timeout: float, archive: Path | None = None
) -> dict[str, Any]:
    """The quickstart's first ``%%spark`` cell with warm start on (the default; at a first start,
    and at a later one with the class archive made) and off, taking turns, each run on a fresh
    server."""
    runs: dict[str, list[dict[str, Any]]] = {w: [] for w in WARM_STARTS}
    for _ in range(repetitions):
        for variant in WARM_STARTS:
            with tempfile.TemporaryDirectory(prefix="prophecy-bench-quickstart-") as base:
                runs[variant].append(quickstart_once(variant, user_wait, timeout, Path(base), archive))
    keys = ("after_kernel_ready_s", "from_server_start_s", "server_answers_s", "kernel_ready_s")
    results: dict[str, Any] = {"repetitions": repetitions, "user_wait_s": user_wait, "runs": runs}
    for warm_start, done in runs.items():
        row = {k: summary([r[k] for r in done]) for k in keys}
        for index in range(len(done[0]["cells_s"])):
            row[f"cell_{index + 1}_s"] = summary([r["cells_s"][index] for r in done])
        for event in GATEWAY_EVENTS:
            seen = [r["gateway_after_server_start_s"].get(event) for r in done]
            if seen and all(e is not None for e in seen):
                row[event] = summary(seen)
        results[warm_start] = row
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
