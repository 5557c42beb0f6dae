"""Batches: ``spark-submit`` of a Python file on local Spark, with Livy's batch lifecycle."""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import signal
import time
from dataclasses import dataclass, field
from typing import Any

from prophecy_jupyter.gateway import errors, processes
from prophecy_jupyter.gateway.bodies import CreateBatch
from prophecy_jupyter.gateway.config import GatewayConfig
from prophecy_jupyter.gateway.logs import LogBuffer
from prophecy_jupyter.gateway.spark_host import base_spark_conf

FINISHED = {"success", "dead", "killed"}
_APP_ID = re.compile(r"\b(local-\d+)\b")


def spark_submit_path() -> str:
    from pyspark.find_spark_home import _find_spark_home

    return os.path.join(_find_spark_home(), "bin", "spark-submit")


def local_path(uri: str) -> str:
    """``local:`` and ``file:`` URIs as paths; anything else is left to spark-submit."""
    for prefix in ("local://", "file://", "local:", "file:"):
        if uri.startswith(prefix):
            return uri[len(prefix) :]
    return uri


@dataclass
class Batch:
    id: int
    request: CreateBatch
    owner: str | None
    proxy_user: str | None
    state: str = "starting"
    app_id: str | None = None
    log: LogBuffer = field(default_factory=LogBuffer)
    process: asyncio.subprocess.Process | None = None
    finished_at: float | None = None
    killed: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.request.name,
            "owner": self.owner,
            "proxyUser": self.proxy_user,
            "state": self.state,
            "appId": self.app_id,
            "appInfo": {"driverLogUrl": None, "sparkUiUrl": None},
            "log": self.log.tail(10),
        }


class BatchManager:
    """Runs batches as spark-submit processes."""

    def __init__(self, config: GatewayConfig, work_dir: str):
        self.config = config
        self.work_dir = work_dir
        self.batches: dict[int, Batch] = {}
        self._ids = itertools.count()
        self._tasks: set[asyncio.Task] = set()

    def create(self, request: CreateBatch, owner: str | None, do_as: str | None) -> Batch:
        self._forget_finished()
        batch = Batch(next(self._ids), request, owner, do_as or request.proxyUser)
        self.batches[batch.id] = batch
        task = asyncio.create_task(self._run(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return batch

    def get(self, key: str) -> Batch:
        batch = self.batches.get(int(key)) if key.isdigit() else None
        if batch is None:
            raise errors.batch_not_found(key)
        return batch

    def command(self, request: CreateBatch) -> list[str]:
        conf = base_spark_conf(self.config, self.work_dir, request.spark_conf())
        command = [spark_submit_path(), "--master", conf.pop("spark.master")]
        if request.name:
            command += ["--name", request.name]
        if request.className:
            command += ["--class", request.className]
        for key, value in conf.items():
            command += ["--conf", f"{key}={value}"]
        return [*command, local_path(request.file), *(request.args or [])]

    async def _run(self, batch: Batch) -> None:
        try:
            batch.process = await processes.spawn(
                self.command(batch.request), self.work_dir, niceness=self.config.niceness
            )
        except OSError as exc:
            batch.log.add(f"could not start spark-submit: {exc}")
            self._finish(batch, "dead")
            return
        batch.state = "running"
        assert batch.process.stdout
        async for raw in batch.process.stdout:
            line = raw.decode(errors="replace")
            batch.log.add(line)
            if batch.app_id is None and (match := _APP_ID.search(line)):
                batch.app_id = match.group(1)
        code = await batch.process.wait()
        batch.log.add(f"spark-submit exited with code {code}")
        self._finish(batch, "killed" if batch.killed else "success" if code == 0 else "dead")

    def _finish(self, batch: Batch, state: str) -> None:
        batch.state = state
        batch.finished_at = time.monotonic()

    async def delete(self, batch: Batch) -> None:
        """Kill the batch if it runs, and forget it."""
        process = batch.process
        if process is not None and process.returncode is None:
            batch.killed = True
            await processes.stop(process, signal.SIGTERM, grace=10)
        self.batches.pop(batch.id, None)

    def _forget_finished(self) -> None:
        now = time.monotonic()
        for batch in list(self.batches.values()):
            if batch.finished_at and now - batch.finished_at > self.config.finished_session_ttl:
                self.batches.pop(batch.id, None)

    async def shutdown(self) -> None:
        await asyncio.gather(*(self.delete(b) for b in list(self.batches.values())), return_exceptions=True)
