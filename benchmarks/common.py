"""Shared pieces of the benchmarks: processes, gateways, fabrics, memory sampling and statistics."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psutil

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
LOGS = RESULTS / "logs"
MB = 1024 * 1024
FABRIC = "gw"
CONNECT_PYTHON = REPO / ".venv-connect" / "bin" / "python"
"""The Spark Connect client's environment (``make bench`` builds it from connect-requirements.txt)."""
CONNECT_PORT_ENV = "BENCH_CONNECT_PORT"
"""How a Spark Connect worker learns its server's port."""
CONNECT_SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"


# -- statistics ---------------------------------------------------------------------------------


def percentile(values: Sequence[float], share: float) -> float:
    """The ``share`` quantile with linear interpolation between ranks (numpy's default)."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * share
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary(values: Sequence[float]) -> dict[str, float]:
    """Median, p90, min, max and count of some measurements."""
    return {
        "median": statistics.median(values),
        "p90": percentile(values, 0.9),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


# -- processes ----------------------------------------------------------------------------------


class ProcessTracker:
    """Remembers every descendant of a process (by default this one) while it runs.

    A watcher thread lists the descendants a few times a second, so processes started by our
    subprocesses (gateways, JVMs, interpreters) are known even after their parent is gone, and
    :meth:`finish` can stop by PID whatever is still running.
    """

    def __init__(self, root: int | None = None, interval: float = 0.2):
        self._root = psutil.Process(root)
        self._seen: dict[int, psutil.Process] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._interval = interval
        self._thread = threading.Thread(target=self._watch, name="process-tracker", daemon=True)

    def __enter__(self) -> ProcessTracker:
        self.snapshot()
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.finish()

    def _watch(self) -> None:
        while not self._stopping.wait(self._interval):
            self.snapshot()

    def snapshot(self) -> None:
        children: list[psutil.Process] = []
        with contextlib.suppress(psutil.Error):
            children = self._root.children(recursive=True)
        with self._lock:
            for child in children:
                self._seen.setdefault(child.pid, child)

    def finish(self, wait: float = 15.0) -> list[str]:
        """Give every remembered process ``wait`` s to end by itself, then stop it; see :func:`end`."""
        self.snapshot()
        self._stopping.set()
        with self._lock:
            seen = list(self._seen.values())
        return end(seen, wait)


def end(processes: list[psutil.Process], wait: float = 15.0, grace: float = 10.0) -> list[str]:
    """Wait up to ``wait`` s for the processes to exit, SIGTERM the rest, SIGKILL them after ``grace``.

    Returns ``pid name`` of each process that had to be signalled.
    """
    _, alive = psutil.wait_procs(processes, timeout=wait)
    signalled = []
    for process in alive:
        with contextlib.suppress(psutil.Error):
            signalled.append(f"{process.pid} {process.name()}")
            process.terminate()
    _, left = psutil.wait_procs(alive, timeout=grace)
    for process in left:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(left, timeout=5)
    return signalled


def stop_gateway(gateway: Any) -> list[str]:
    """Stop a gateway the project's way (SIGTERM), then make sure its JVM and interpreters end too."""
    try:
        root = psutil.Process(gateway.process.pid)
        tree = [root, *root.children(recursive=True)]
    except psutil.Error:
        tree = []
    gateway.stop()
    return end(tree)


def tree_memory(pid: int) -> dict[str, float]:
    """Resident (RSS) and proportional (PSS) memory of ``pid``'s descendants, in MB."""
    rss = pss = 0
    count = 0
    for child in psutil.Process(pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            info = child.memory_full_info()
            rss += info.rss
            pss += getattr(info, "pss", info.rss)
            count += 1
    return {"rss_mb": rss / MB, "pss_mb": pss / MB, "processes": count}


@contextlib.contextmanager
def output_to(path: Path) -> Iterator[None]:
    """Point this process's stdout and stderr at ``path``; children started meanwhile keep it."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, copy in zip((1, 2), saved, strict=True):
            os.dup2(copy, fd)
            os.close(copy)


@contextlib.contextmanager
def running_gateway(name: str, *options: str, token: str) -> Iterator[Any]:
    """Our gateway (``tests.servers.gateway.start_gateway``) with ``--idle-timeout 0``, while in use.

    It logs to ``results/logs/<name>.log`` and is stopped, JVM and interpreters included, on exit.
    """
    from tests.servers.gateway import start_gateway

    with output_to(LOGS / f"{name}.log"):
        gateway = start_gateway("--idle-timeout", "0", "--log-level", "WARNING", *options, token=token)
    try:
        yield gateway
    finally:
        stop_gateway(gateway)


def statement_times(url: str, token: str, session_id: int, after: int = -1) -> list[dict[str, Any]]:
    """``id`` and server seconds (``completed - started``) of a session's statements after id ``after``."""
    import requests

    answer = requests.get(
        f"{url}/sessions/{session_id}/statements", headers={"Authorization": f"Bearer {token}"}, timeout=60
    )
    answer.raise_for_status()
    return [
        {"id": s["id"], "server_s": (s["completed"] - s["started"]) / 1000}
        for s in answer.json()["statements"]
        if s["id"] > after
    ]


def worker_env(data_dir: Path | None = None, **extra: str) -> dict[str, str]:
    """The environment of a benchmark subprocess (repo on the path, optional data dir)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "SPARK_LOCAL_IP": "127.0.0.1", **extra}
    if data_dir is not None:
        env["PROPHECY_JUPYTER_DATA_DIR"] = str(data_dir)
    return env


def run_worker(
    module: str,
    args: Sequence[str],
    env: dict[str, str],
    timeout: float,
    log_name: str,
    python: Path | None = None,
) -> tuple[dict[str, Any], float, float]:
    """Run ``python -m module *args --out FILE`` (with this interpreter unless ``python`` is
    given); returns its JSON, launch epoch and wall seconds.

    Its output goes to ``results/logs/<log_name>.log``; on failure or timeout its whole process
    tree is stopped and the log's tail is in the error.
    """
    LOGS.mkdir(parents=True, exist_ok=True)
    log_path = LOGS / f"{log_name}.log"
    out = LOGS / f"{log_name}.json"
    out.unlink(missing_ok=True)
    command = [str(python or sys.executable), "-m", module, *args, "--out", str(out)]
    with open(log_path, "wb") as log:
        launched = time.time()
        started = time.perf_counter()
        process = subprocess.Popen(
            command, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
        with ProcessTracker(process.pid):  # on exit, what the worker started is ended too
            try:
                code = process.wait(timeout)
            except subprocess.TimeoutExpired:
                code = None
            finally:
                wall = time.perf_counter() - started
                if process.poll() is None:  # timed out, or this process was interrupted
                    end([psutil.Process(process.pid)], wait=0)
    what = f"{module} {' '.join(args)}"
    if code is None:
        raise RuntimeError(f"{what} took more than {timeout:.0f} s; see {log_path}")
    if code != 0 or not out.exists():
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-25:])
        raise RuntimeError(f"{what} failed (exit {code}); {log_path} ends with:\n{tail}")
    return json.loads(out.read_text()), launched, wall


def write_result(path: str, result: dict[str, Any]) -> None:
    """A worker's answer to its parent."""
    Path(path).write_text(json.dumps(result, indent=2, default=str))


# -- memory of this process ---------------------------------------------------------------------


class PeakRss:
    """Peak RSS of this process above the RSS at entry, sampled every ``interval`` s in a thread."""

    def __init__(self, interval: float = 0.01):
        self._process = psutil.Process()
        self._interval = interval
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="rss-sampler", daemon=True)
        self.baseline = 0
        self.peak = 0
        self.samples = 0

    def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, self._process.memory_info().rss)
            self.samples += 1
            if self._done.wait(self._interval):
                return

    def __enter__(self) -> PeakRss:
        self.baseline = self.peak = self._process.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)

    @property
    def increase(self) -> int:
        return self.peak - self.baseline


# -- Spark Connect ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def connect_server(
    driver_memory: str, log_name: str = "connect-server", timeout: float = 180.0
) -> Iterator[int]:
    """A Spark Connect server from .venv's pyspark on 127.0.0.1 (what ``sbin/start-connect-server.sh
    --wait`` runs, without the daemon script), logging to ``results/logs/<log_name>.log``; yields
    its port and stops it by PID on exit."""
    import pyspark

    home = Path(pyspark.__file__).parent
    port = free_port()
    command = [
        "bash",
        str(home / "bin" / "spark-submit"),
        "--class",
        CONNECT_SERVER_CLASS,
        "--name",
        "Spark Connect server",
        "--master",
        "local[*]",
        "--driver-memory",
        driver_memory,
        "--conf",
        "spark.connect.grpc.binding.address=127.0.0.1",
        "--conf",
        f"spark.connect.grpc.binding.port={port}",
    ]
    env = {**os.environ, "SPARK_HOME": str(home), "SPARK_CONNECT_MODE": "0", "SPARK_LOCAL_IP": "127.0.0.1"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    LOGS.mkdir(parents=True, exist_ok=True)
    log_path = LOGS / f"{log_name}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command,
            cwd=LOGS,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-25:])
                raise RuntimeError(f"the Spark Connect server exited ({process.returncode}):\n{tail}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Spark Connect server did not listen within {timeout:.0f} s")
            time.sleep(0.2)
        yield port
    finally:
        try:
            root = psutil.Process(process.pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.Error:
            tree = []
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        end(tree, wait=30)
        process.wait(5)


# -- fabrics and clients ------------------------------------------------------------------------


def register_gateway(data_dir: Path, url: str, token: str) -> None:
    """Register the gateway as livy fabric ``gw`` with a bearer token (as a user would)."""
    from prophecy_jupyter.environment import local_username
    from prophecy_jupyter.services.runtime import build_services

    user = local_username()
    built = build_services(data_dir, bootstrap_user=user)
    try:
        spec = {"name": FABRIC, "kind": "livy", "settings": {"url": url, "auth": "bearer"}}
        fabric = built.fabrics.create(user, "default", spec)
        built.credentials.set(user, fabric, token)
    finally:
        built.close()


class QuietDisplay:
    """What sparkmagic writes to the notebook, dropped (it needs these five methods)."""

    def display(self, obj: object) -> None: ...

    def html(self, html: str) -> None: ...

    def write(self, text: str) -> None: ...

    def writeln(self, text: str) -> None: ...

    def send_error(self, text: str) -> None:
        print(f"sparkmagic: {text}", file=sys.stderr)


def sparkmagic(conf_dir: Path) -> SimpleNamespace:
    """sparkmagic's client classes, imported with a scratch ``SPARKMAGIC_CONF_DIR`` (read at import)."""
    conf_dir.mkdir(parents=True, exist_ok=True)
    os.environ["SPARKMAGIC_CONF_DIR"] = str(conf_dir)
    import sparkmagic.utils.configuration as conf
    import sparkmagic.utils.constants as constants
    from sparkmagic.livyclientlib.command import Command
    from sparkmagic.livyclientlib.endpoint import Endpoint
    from sparkmagic.livyclientlib.livyreliablehttpclient import LivyReliableHttpClient
    from sparkmagic.livyclientlib.livysession import LivySession
    from sparkmagic.livyclientlib.sendpandasdftosparkcommand import SendPandasDfToSparkCommand
    from sparkmagic.livyclientlib.sqlquery import SQLQuery
    from sparkmagic.utils.utils import Namespace, initialize_auth

    if str(conf_dir) != constants.HOME_PATH:
        raise RuntimeError("sparkmagic was imported before its conf dir was set")

    def start_session(url: str, token: str) -> Any:
        """What ``%spark add -s bench -l python -u URL -t Basic_Access -a bench -p TOKEN`` does."""
        args = Namespace(auth=constants.AUTH_BASIC, user="bench", password=token, url=url)
        client = LivyReliableHttpClient.from_endpoint(Endpoint(url, auth=initialize_auth(args)))
        properties = conf.get_session_properties(constants.LANG_PYTHON)
        session = LivySession(client, properties, QuietDisplay(), heartbeat_timeout=0)
        session.start()
        return session

    return SimpleNamespace(
        Command=Command,
        SQLQuery=SQLQuery,
        SendPandasDfToSparkCommand=SendPandasDfToSparkCommand,  # what %%send_to_spark -t df runs
        start_session=start_session,
    )


def versions() -> dict[str, str]:
    """Versions of what is measured, with the commit of the product code (``+dirty`` if changed)."""
    from importlib.metadata import version

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    if git("status", "--porcelain", "--", "prophecy_jupyter"):
        commit += "+dirty"
    names = ("prophecy-jupyter", "sparkmagic", "pyspark", "pandas", "pyarrow", "requests")
    return {"commit": commit, "python": sys.version.split()[0], **{n: version(n) for n in names}}
