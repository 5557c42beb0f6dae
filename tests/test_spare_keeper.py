"""The spare keeper's own logic, with real child processes and no JVM: a spare that cannot attach
is dropped and its process stopped, a session that had taken it is told why, and after
``MAX_FAILURES`` failed spares no more are started. With a JVM: ``test_spare_interpreter.py``."""

from __future__ import annotations

import asyncio
import socket
import sys

from prophecy_jupyter.gateway import processes
from prophecy_jupyter.gateway.spare import MAX_FAILURES, SpareKeeper


class Launcher:
    """Starts stand-in interpreters (real processes that only wait) and keeps their tokens."""

    def __init__(self, work_dir: str):
        self.work_dir = work_dir
        self.tokens: list[str] = []
        self.processes: list[asyncio.subprocess.Process] = []

    async def __call__(self, token: str) -> asyncio.subprocess.Process:
        process = await processes.spawn([sys.executable, "-c", "import time; time.sleep(60)"], self.work_dir)
        self.tokens.append(token)
        self.processes.append(process)
        return process

    async def started(self, count: int) -> None:
        for _ in range(500):
            if len(self.processes) >= count:
                await asyncio.sleep(0.05)  # the keeper records the process once launch returns
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"{count} spares were not started")


async def no_jvm() -> dict:
    raise ConnectionRefusedError("the shared JVM is gone")


async def streams() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    near, _far = socket.socketpair()
    return await asyncio.open_connection(sock=near)


def test_a_spare_that_cannot_attach_is_stopped_and_its_taker_told_and_failures_end_the_spares(tmp_path):
    async def scenario() -> None:
        tasks: set[asyncio.Task] = set()

        def spawn(coroutine) -> asyncio.Task:
            task = asyncio.ensure_future(coroutine)
            tasks.add(task)
            return task

        launch = Launcher(str(tmp_path))
        keeper = SpareKeeper(launch, no_jvm, spawn, enabled=True)

        keeper.keep()
        keeper.keep()  # one spare at a time
        await launch.started(1)
        assert len(launch.processes) == 1
        assert keeper.claim(b"not-the-token") is None
        spare = keeper.claim(launch.tokens[0].encode())
        session, error = await keeper.attach(spare, *await streams())
        assert session is None and "could not attach to the shared Spark JVM" in error and "gone" in error
        await asyncio.gather(*tasks)
        assert launch.processes[0].returncode is not None, "the failed spare's process was stopped"

        keeper.keep()
        await launch.started(2)
        taken = keeper.take()
        assert taken is not None and keeper.take() is None
        taken.taken.set_result("the session that took it")
        spare = keeper.claim(launch.tokens[1].encode())
        session, error = await keeper.attach(spare, *await streams())
        assert (session, "gone" in error) == ("the session that took it", True)

        for count in range(3, MAX_FAILURES + 2):
            keeper.keep()
            await launch.started(count)
            spare = keeper.claim(launch.tokens[-1].encode())
            await keeper.attach(spare, *await streams())
        keeper.keep()
        await asyncio.sleep(0.2)
        assert len(launch.processes) == MAX_FAILURES + 1, "no spare after MAX_FAILURES failed ones"

        await keeper.shutdown()
        for process in launch.processes:
            if process.returncode is None:
                process.kill()
                await process.wait()

    asyncio.run(scenario())


def test_shutdown_stops_a_spare_no_session_took(tmp_path):
    async def scenario() -> None:
        launch = Launcher(str(tmp_path))
        keeper = SpareKeeper(launch, no_jvm, asyncio.ensure_future, enabled=True)
        keeper.keep()
        await launch.started(1)
        await keeper.shutdown()
        assert launch.processes[0].returncode is not None
        keeper.keep()
        await asyncio.sleep(0.2)
        assert len(launch.processes) == 1, "no spare is started once shut down"

    asyncio.run(scenario())
