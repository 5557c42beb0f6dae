"""Benchmark 1: the latency a client adds over the server's own execution time of a statement.

Server time is the statement's ``completed - started`` (epoch ms in Livy's statement JSON);
added latency is the client's wall time from submit to result minus that.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Protocol

from benchmarks.common import FABRIC, register_gateway, statement_times, summary

SECONDS = (0.0, 0.5, 1.5)
NOTEBOOK = "bench-latency"


def sleep_code(seconds: float) -> str:
    return f"import time\ntime.sleep({seconds})"


class Client(Protocol):
    description: str

    def measure(self, code: str) -> dict[str, Any]: ...

    def close(self) -> None: ...


class OurClient:
    """``SessionService.run`` against the fabric ``gw`` registered in its own data dir."""

    def __init__(self, description: str, data_dir: Path, url: str, token: str):
        from prophecy_jupyter.environment import local_username
        from prophecy_jupyter.services.runtime import build_services

        self.description = description
        register_gateway(data_dir, url, token)
        self.user = local_username()
        self.service = build_services(data_dir).sessions

    def measure(self, code: str) -> dict[str, Any]:
        from prophecy_jupyter.results.model import RunState

        started = time.perf_counter()
        run = self.service.run(self.user, NOTEBOOK, FABRIC, code)
        wall = time.perf_counter() - started
        if run.state != RunState.FINISHED:
            raise RuntimeError(f"our run ended {run.state}: {run.result}")
        return {"wall_s": wall, "server_s": run.remote_ms / 1000, "polls": run.polls}

    def close(self) -> None:
        self.service.shutdown()


class SparkmagicClient:
    """sparkmagic's ``Command(code).execute(session)``: what a ``%%spark`` cell does."""

    def __init__(self, description: str, sm: Any, url: str, token: str):
        self.description = description
        self.sm = sm
        self.session = sm.start_session(url, token)
        self.url, self.token = url, token

    def measure(self, code: str) -> dict[str, Any]:
        started = time.perf_counter()
        ok, output, _ = self.sm.Command(code).execute(self.session)
        wall = time.perf_counter() - started
        if not ok:
            raise RuntimeError(f"sparkmagic's statement failed: {output}")
        last = statement_times(self.url, self.token, self.session.id)[-1]
        return {"wall_s": wall, "server_s": last["server_s"]}

    def close(self) -> None:
        self.session.delete()


def measure_latency(clients: dict[str, Client], repetitions: int, seconds=SECONDS) -> dict[str, Any]:
    """Each client runs ``time.sleep(S)`` ``repetitions`` times per S, the clients taking turns."""
    for client in clients.values():
        client.measure("1")  # warm-up
    samples: dict[str, dict[float, list[dict[str, Any]]]] = {n: {s: [] for s in seconds} for n in clients}
    for sleep in seconds:
        for _ in range(repetitions):
            for name, client in clients.items():
                samples[name][sleep].append(client.measure(sleep_code(sleep)))
    results: dict[str, Any] = {}
    for name, client in clients.items():
        rows = {}
        for sleep, measured in samples[name].items():
            row = {
                "added_ms": summary([(m["wall_s"] - m["server_s"]) * 1000 for m in measured]),
                "server_s": summary([m["server_s"] for m in measured]),
                "wall_s": summary([m["wall_s"] for m in measured]),
                "samples": measured,
            }
            if "polls" in measured[0]:
                row["polls"] = summary([m["polls"] for m in measured])
            rows[str(sleep)] = row
        results[name] = {"description": client.description, "by_sleep": rows}
    return {"sleeps_s": list(seconds), "repetitions": repetitions, "clients": results}
