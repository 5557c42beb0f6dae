"""A real Airflow 3 for tests, from ``.venv-airflow`` (``make test`` builds it from
``tests/airflow-requirements.txt``): SQLite in a fresh ``AIRFLOW_HOME``, the API server, the
scheduler (LocalExecutor) and the DAG processor, each a process of its own on 127.0.0.1 and free
ports. Users log in through ``SimpleAuthManager`` with passwords we choose (its passwords file);
the DAG processor looks for new files every second or two. Connections are given in the
processes' environment only (``AIRFLOW_CONN_*``), never in a DAG. ``stop()`` ends every process
started here, by its id (and its process group, which it leads)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW_BIN = ROOT / ".venv-airflow" / "bin"
COMPONENTS = ("api-server", "scheduler", "dag-processor")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class AirflowProcesses:
    url: str
    home: Path
    dags: Path
    users: dict[str, str]
    """User name → password (the first is an admin, the others viewers)."""
    environment: dict[str, str]
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    startup_seconds: float = 0.0

    def token(self, user: str) -> str:
        answer = requests.post(
            f"{self.url}/auth/token", json={"username": user, "password": self.users[user]}, timeout=30
        )
        answer.raise_for_status()
        return answer.json()["access_token"]

    def api(self, user: str | None = None) -> requests.Session:
        """A client of the REST API as ``user`` (the admin by default)."""
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {self.token(user or next(iter(self.users)))}"
        return http

    def log(self, component: str, tail: int = 6000) -> str:
        return (self.home / f"{component}.log").read_text(errors="replace")[-tail:]

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM each process; after ``grace`` seconds, SIGKILL what is left of each one's group
        (task workers, parsers)."""
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(max(0.1, deadline - time.monotonic()))
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # the group it leads: its children
            process.wait()


def start_airflow(
    root: Path, users: dict[str, str], connections: dict[str, dict], timeout: float = 240
) -> AirflowProcesses:
    """Airflow under ``root`` (home and dags folder), with ``users`` (name → password; the first
    an admin) and ``connections`` (id → Airflow's JSON form); returns once the API answers and the
    scheduler and the DAG processor report healthy."""
    started = time.monotonic()
    home, dags = root / "home", root / "dags"
    home.mkdir(parents=True)
    dags.mkdir(parents=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps(users))
    passwords.chmod(0o600)
    roles = ",".join(f"{name}:{'admin' if i == 0 else 'viewer'}" for i, name in enumerate(users))
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PROPHECY"))}
    environment.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": roles,
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{url}/execution/",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__BASE_URL": url,
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "2",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "10",
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            "AIRFLOW__DAG_PROCESSOR__STALE_DAG_THRESHOLD": "10",
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
            "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "2",
            **{f"AIRFLOW_CONN_{conn.upper()}": json.dumps(value) for conn, value in connections.items()},
        }
    )
    airflow = AirflowProcesses(url, home, dags, dict(users), environment)
    migrated = subprocess.run(
        [str(AIRFLOW_BIN / "airflow"), "db", "migrate"],
        env=environment,
        cwd=home,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if migrated.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed:\n{migrated.stderr[-4000:]}")
    try:
        for component in COMPONENTS:
            with open(home / f"{component}.log", "wb") as log:
                airflow.processes[component] = subprocess.Popen(
                    [str(AIRFLOW_BIN / "airflow"), component],
                    env=environment,
                    cwd=home,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
        _wait_until_healthy(airflow, time.monotonic() + timeout)
    except BaseException:
        airflow.stop()
        raise
    airflow.startup_seconds = time.monotonic() - started
    return airflow


def _wait_until_healthy(airflow: AirflowProcesses, deadline: float) -> None:
    health: dict = {}
    while time.monotonic() < deadline:
        for component, process in airflow.processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"airflow {component} exited:\n{airflow.log(component)}")
        try:
            health = requests.get(f"{airflow.url}/api/v2/monitor/health", timeout=5).json()
        except (requests.RequestException, ValueError):
            health = {}
        wanted = ("metadatabase", "scheduler", "dag_processor")
        if health and all((health.get(part) or {}).get("status") == "healthy" for part in wanted):
            return
        time.sleep(0.5)
    logs = "\n".join(f"--- {c}\n{airflow.log(c, 3000)}" for c in airflow.processes)
    raise RuntimeError(f"Airflow did not become healthy ({health}):\n{logs}")
